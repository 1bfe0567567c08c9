# syntax=docker/dockerfile:1
# Build stage: turn the project into wheels, so the runtime image carries no compilers or sources.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY voice_server ./voice_server
COPY intents ./intents
COPY ledger ./ledger
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: a non-root user; DATABASE_URL and the other settings come from the environment.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 ongea
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY sql /app/sql
ENV ONGEA_MIGRATIONS_DIR=/app/sql \
    ONGEA_HOST=0.0.0.0 \
    ONGEA_PORT=8080 \
    ONGEA_DATA_DIR=/home/ongea/.ongea \
    PYTHONUNBUFFERED=1
USER ongea
WORKDIR /home/ongea
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ONGEA_PORT','8080'))"
CMD ["ongea-pesa", "serve"]
