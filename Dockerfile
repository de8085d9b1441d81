# The worker image of docker-compose.yml (CPU; use a CUDA base image for a GPU box).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY factory ./factory
COPY jobs ./jobs
COPY worker ./worker
COPY submitter ./submitter
RUN pip install --no-cache-dir ".[dashboard]"
ENTRYPOINT []
CMD ["factory", "worker", "--home", "/storage"]
