# The Spillway operator image: a wheel built in one stage, installed alone into a virtual
# environment in a final stage that runs as a non-root user and works with a read-only root
# filesystem. BASE is any Debian-based image with Python 3.11+ and its venv module: the
# official python image by default; the test bed builds on its own Debian image with buildah.
# Every Python package comes from a locked set with its hashes (requirements/*.lock, made by
# `make lock`): pip refuses any other version or any file whose hash differs.
ARG BASE=docker.io/library/python:3.11-slim

FROM ${BASE} AS build
WORKDIR /src
COPY requirements/build.lock ./requirements/
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip install --no-cache-dir --require-hashes --only-binary :all: -r requirements/build.lock
COPY pyproject.toml README.md ./
COPY operator ./operator
# No build isolation: the locked setuptools and wheel build it, nothing fetched unhashed.
RUN /opt/build/bin/python -m build --wheel --no-isolation --outdir /wheels

FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp PATH=/opt/spillway/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY --from=build /wheels /wheels
COPY requirements/operator.lock /wheels/
RUN python3 -m venv /opt/spillway \
    && /opt/spillway/bin/pip install --no-cache-dir --require-hashes --only-binary :all: -r /wheels/operator.lock \
    && /opt/spillway/bin/pip install --no-cache-dir --no-deps /wheels/*.whl \
    && /opt/spillway/bin/pip check && rm -rf /wheels \
    && useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin spillway
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["spillway"]
CMD ["run"]
