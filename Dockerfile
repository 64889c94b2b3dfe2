# The Spillway operator image: a wheel built in one stage, installed alone in a slim final
# stage that runs as a non-root user and works with a read-only root filesystem.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir build==1.2.2
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m build --wheel --outdir /wheels

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin spillway
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["spillway"]
CMD ["run"]
