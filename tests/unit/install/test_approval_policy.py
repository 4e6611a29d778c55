"""The approvers group is one setting, in Helm and in kustomize, and reaches the approval policy (docs/approval.md).

The policy's own behaviour is tested on the real API server (tests/integration/test_approval_admission.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helmchart import by_kind, kustomize_doc_example, render, template

ROOT = Path(__file__).resolve().parents[3]


def approval_policy(docs: list[dict[str, Any]], name: str = "gyre-approval") -> dict[str, Any]:
    (policy,) = [d for d in by_kind(docs, "ValidatingAdmissionPolicy") if d["metadata"]["name"] == name]
    return policy


def group_expression(policy: dict[str, Any]) -> str:
    first = policy["spec"]["variables"][0]
    assert first["name"] == "approverGroup"
    return str(first["expression"])


def test_the_chart_installs_the_approval_policy_and_its_binding_with_the_default_group() -> None:
    docs = render()
    policy = approval_policy(docs)
    assert group_expression(policy) == "'gyre-approvers'"
    (binding,) = [
        b
        for b in by_kind(docs, "ValidatingAdmissionPolicyBinding")
        if b["spec"]["policyName"] == "gyre-approval"
    ]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert policy["spec"]["matchConstraints"]["resourceRules"][0]["resources"] == ["trainingruns"]


def test_the_group_is_a_chart_value_named_in_the_policys_messages() -> None:
    docs = render("policy.approval.group=ml-approvers", release="ml")
    policy = approval_policy(docs, "ml-gyre-approval")
    assert group_expression(policy) == "'ml-approvers'"
    assert any(
        "policy.approval.group" in v.get("messageExpression", "") for v in policy["spec"]["validations"]
    )


@pytest.mark.parametrize("group", ["", "it's"])
def test_the_schema_refuses_a_group_that_could_not_be_quoted_in_cel(group: str) -> None:
    proc = template(f"policy.approval.group={group}")
    assert proc.returncode != 0 and "policy.approval.group" in proc.stderr.replace("/", ".")


def test_the_kustomize_overlay_in_the_docs_sets_the_group(tmp_path: Path) -> None:
    docs = kustomize_doc_example("docs/approval.md", "approval-kustomization", tmp_path)
    assert group_expression(approval_policy(docs)) == "'ml-approvers'"
    # Everything else is the install unchanged.
    image_policy = approval_policy(docs, "gyre-image-policy")
    assert image_policy["spec"]["validations"]
