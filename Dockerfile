# The backcheck image every compose service runs (CLI, relay, projection workers, intake).
FROM python:3.11-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY projections projections
COPY services services
COPY infra infra
RUN pip install --no-cache-dir . && apt-get purge -y -qq gcc && apt-get autoremove -y -qq
ENV BACKCHECK_DATA_DIR=/data
ENTRYPOINT ["backcheck"]
CMD ["info"]
