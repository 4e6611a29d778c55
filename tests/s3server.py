"""A real S3-compatible server for the tests: moto's server (Apache-2.0, a dev dependency) with IAM enforced.

Why moto and not MinIO: MinIO's server is AGPL-3.0, which this project's package rules do not use; moto is
pip-installed by `make venv` (nothing to build or cache), speaks S3 and IAM over HTTP, and once authentication
is switched on (`/moto-api/reset-auth`) it checks every request's SigV4 signature and evaluates the caller's IAM
identity policies against `arn:aws:s3:::bucket[/key]`. It does not evaluate policy Conditions, so a listing
cannot be limited to a prefix (`s3:prefix`): isolating listings needs a bucket per namespace
(`s3://gyre-{namespace}/...`); a shared bucket isolates object reads and writes only. See docs/cluster.md.
Used by tests/integration/test_object_store.py and tests/e2e/test_object_store_pods.py.

`start_s3_server()` runs it as a subprocess on a free port and fails (never skips) when it cannot start.
Setup (buckets, users, policies, keys) runs with an admin user created before authentication is switched on.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import pytest

__all__ = ["Credentials", "S3Server", "start_s3_server"]

REGION = "us-east-1"


@dataclass(frozen=True)
class Credentials:
    """One IAM user's access key, as a namespace's store Secret holds it."""

    access_key_id: str
    secret_access_key: str

    def secret_data(self, endpoint: str) -> dict[str, str]:
        """The keys of a namespace's store Secret (gyre.api.env.STORE_SECRET_*)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": REGION,
        }


@dataclass
class S3Server:
    """A running moto server with IAM enforced; `admin` may do anything."""

    endpoint: str
    admin: Credentials
    process: subprocess.Popen[bytes]
    log_path: str
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str, creds: Credentials | None = None) -> Any:
        """A boto3 client for `service` signed with `creds` (default: the admin)."""
        import boto3

        who = creds or self.admin
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=who.access_key_id,
            aws_secret_access_key=who.secret_access_key,
        )

    def create_bucket(self, bucket: str) -> None:
        """Create a bucket (as the admin)."""
        self.client("s3").create_bucket(Bucket=bucket)

    def add_user(self, name: str, resources: list[str]) -> Credentials:
        """An IAM user allowed every S3 action on `resources` (ARNs) and nothing else; returns its new key."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": resources}],
        }
        iam.put_user_policy(UserName=name, PolicyName="gyre-store", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    def log(self) -> str:
        """The server's output so far."""
        with open(self.log_path, errors="replace") as fh:
            return fh.read()

    def stop(self) -> None:
        """Stop the server and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def start_s3_server(host: str = "127.0.0.1", timeout: float = 60.0) -> S3Server:
    """Start moto's server on a free port, create an admin user, then switch IAM enforcement on.

    Fails the test (pytest.fail, not a skip) with the server's log when it cannot start.
    """
    port = _free_port(host)
    log_fd, log_path = tempfile.mkstemp(prefix="gyre-s3-", suffix=".log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            env=env,
        )
    except OSError as exc:
        pytest.fail(f"cannot start the S3 test server (python -m moto.server): {exc}", pytrace=False)
    finally:
        os.close(log_fd)
    endpoint = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            with open(log_path, errors="replace") as fh:
                tail = fh.read()[-3000:]
            pytest.fail(
                f"the S3 test server exited with code {process.returncode} before it served (is moto[server] "
                f"installed? `make venv`):\n{tail}",
                pytrace=False,
            )
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(
                    f"the S3 test server did not answer on {endpoint} within {timeout:.0f} s", pytrace=False
                )
            time.sleep(0.2)
    # Until reset-auth, moto accepts anything: create the admin, then every later request must be signed.
    server = S3Server(endpoint, Credentials("bootstrap", "bootstrap"), process, log_path)
    iam = server.client("iam")
    iam.create_user(UserName="gyre-test-admin")
    admin_policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    iam.put_user_policy(
        UserName="gyre-test-admin", PolicyName="admin", PolicyDocument=json.dumps(admin_policy)
    )
    key = iam.create_access_key(UserName="gyre-test-admin")["AccessKey"]
    server.admin = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    _post(f"{endpoint}/moto-api/reset-auth", b"0")
    return server
