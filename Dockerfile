# The intake API. Evidence and personal data never go into the image: configure with INTAKE_* variables.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libmagic1 && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app intake
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY migrations ./migrations
RUN pip install --no-cache-dir .
# Least privilege: no root, nothing writable but the data folder.
RUN mkdir -p /app/var && chown intake /app/var
USER intake
# Two workers by default (about one per core); migrations run once before they start.
ENV INTAKE_DATA_DIR=/app/var INTAKE_WORKERS=2
EXPOSE 8000
CMD ["intake", "serve", "--host", "0.0.0.0", "--port", "8000"]
