# Polaris Workflow: one image for web (gunicorn), the async tier (gunicorn with uvicorn workers: the event
# feed's long-polls), worker and beat (Celery). See compose.yaml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Runtime dependencies only (pyproject's [project].dependencies), pinned by the lock file; the dev and
# embedded extras (pytest, pgserver, …) stay out of the image. Cached until either file changes.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt -c requirements.lock \
    && rm /tmp/requirements.txt

COPY . .

# Bytecode compiled once here: with PYTHONDONTWRITEBYTECODE (and read-only code) nothing is cached at run
# time, so without this every gunicorn, worker and beat start recompiles the project's modules.
RUN python -m compileall -q -j 0 /app

# Static files are collected at build time and served by whitenoise (compressed, hashed names). The
# settings need a database URL and a key to import; neither is used by collectstatic.
RUN DATABASE_URL=postgresql://build@localhost/build SECRET_KEY=collectstatic-only JWT_SIGNING_KEY=collectstatic-only-jwt DEBUG=false \
        python manage.py collectstatic --no-input --verbosity 0

# Run as an unprivileged user; the code stays root-owned and read-only to it. The beat schedule and
# metrics directories are its only writable places (a named volume copies the owner on first use).
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin polaris \
    && install -d -o polaris -g polaris /var/lib/polaris/beat /run/metrics
USER polaris

EXPOSE 8000 8001 9808
# Web by default; compose.yaml runs the same image as migrate, the async tier (feed: gunicorn --config
# gunicorn.async.conf.py polaris.asgi:application, port 8001), worker and beat with other commands.
CMD ["gunicorn", "--config", "gunicorn.conf.py", "polaris.wsgi:application"]
