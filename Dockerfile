# Giao Ban service image. Build: docker build -t giaoban .
# Run:  docker run -p 8000:8000 -e GIAOBAN_SECRET_KEY=... \
#         -e GIAOBAN_DATABASE_URL=postgresql+psycopg://user:pass@db/giaoban giaoban
# Migrations are applied at start (python -m server serve).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GIAOBAN_HOST=0.0.0.0 \
    GIAOBAN_PORT=8000 \
    GIAOBAN_VAR_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY media ./media
COPY migrations ./migrations
COPY web ./web
COPY alembic.ini ./
RUN pip install -e . \
    && useradd --system --home /data --create-home giaoban
USER giaoban
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["python", "-m", "server", "serve"]
