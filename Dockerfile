# syntax=docker/dockerfile:1
# Build stage: turn the project into wheels, so the runtime image carries no compilers or sources.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY voice_server ./voice_server
COPY intents ./intents
COPY ledger ./ledger
COPY daraja_sim ./daraja_sim
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: a non-root user; DATABASE_URL and the other settings come from the environment.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 ongea \
    && mkdir -p /home/ongea/.ongea /home/ongea/shared \
    && chown ongea:ongea /home/ongea/.ongea /home/ongea/shared
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY sql /app/sql
# 0.0.0.0 inside the container, so that a published port reaches it: publish it on the host's loopback
# (`-p 127.0.0.1:8080:8080`) behind the reverse proxy that terminates TLS, not on every interface.
ENV ONGEA_MIGRATIONS_DIR=/app/sql \
    ONGEA_HOST=0.0.0.0 \
    ONGEA_PORT=8080 \
    ONGEA_DATA_DIR=/home/ongea/.ongea \
    PYTHONUNBUFFERED=1
# Without DATABASE_URL the server runs an embedded PostgreSQL here, and keeps generated secrets here: a
# volume, so neither is lost with the container. In production (DARAJA_ENVIRONMENT=production) `serve`
# refuses to start without DATABASE_URL and explicit secrets, naming each one missing.
VOLUME ["/home/ongea/.ongea"]
USER ongea
WORKDIR /home/ongea
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ONGEA_PORT','8080'))"
CMD ["ongea-pesa", "serve"]
