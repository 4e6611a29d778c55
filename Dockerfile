# The Gyre image: the operator, the trainer, the profiler and the model server in one.
# On a normal machine it builds from the public Python image; hack/image.sh builds it
# from a locally bootstrapped Debian base instead (BASE_IMAGE=gyre-base:...).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/gyre \
    PATH=/opt/gyre/bin:$PATH

# A venv works the same on both bases (Debian's own python3 refuses system-wide pip installs).
RUN python3 -m venv /opt/gyre
# LightGBM's wheel links the system's OpenMP runtime (XGBoost and scikit-learn bundle their own).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Dependencies first, from the pinned constraints only, so a code change reuses this layer. With them the
# `pipelines` extra (kfp), so the Kubeflow pipeline's lightweight steps (pipelines/) run on this image as it is.
COPY pyproject.toml constraints.txt ./
RUN python3 -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['pipelines']))" \
        > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt -c constraints.txt \
 && rm /tmp/requirements.txt

# Then the project itself, without touching the dependencies.
COPY README.md* LICENSE* ./
COPY operator ./operator
RUN pip install --no-deps -c constraints.txt . \
 && rm -rf /src/build /src/operator/*.egg-info

RUN useradd --uid 65532 --gid 0 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin gyre \
 || echo "gyre:x:65532:0:gyre:/nonexistent:/usr/sbin/nologin" >> /etc/passwd
WORKDIR /
USER 65532:0
ENTRYPOINT ["gyre"]
CMD ["--help"]
