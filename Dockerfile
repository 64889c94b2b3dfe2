# The Spillway operator image: a wheel built in one stage, installed alone into a virtual
# environment in a final stage that runs as a non-root user and works with a read-only root
# filesystem. BASE is any Debian-based image with Python 3.11+ and its venv module: the
# official python image by default; the test bed builds on its own Debian image with buildah.
ARG BASE=docker.io/library/python:3.11-slim

FROM ${BASE} AS build
WORKDIR /src
RUN python3 -m venv /opt/build && /opt/build/bin/pip install --no-cache-dir build==1.2.2
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/build/bin/python -m build --wheel --outdir /wheels

FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp PATH=/opt/spillway/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY --from=build /wheels /wheels
RUN python3 -m venv /opt/spillway && /opt/spillway/bin/pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin spillway
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["spillway"]
CMD ["run"]
