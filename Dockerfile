FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=7860 \
    UV_SYSTEM_CERTS=1 \
    GRADIO_TEMP_DIR=/tmp/gradio \
    GRADIO_ANALYTICS_ENABLED=False \
    ENABLE_WEB_INTERFACE=true \
    SUPPORT_ENV_STORE=sqlite:///tmp/support_env/episodes.db?or=memory

WORKDIR /app

# Dependencies first, pinned from uv.lock, so code changes do not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN pip install --no-cache-dir uv==0.13.8 \
 && uv export --frozen --no-dev --no-hashes --no-emit-project -o /tmp/requirements.txt \
 && uv pip install --system --no-cache --compile-bytecode -r /tmp/requirements.txt

COPY support_env ./support_env
COPY server ./server
COPY inference.py openenv.yaml ./
# Bytecode compiled at build time: the image runs with PYTHONDONTWRITEBYTECODE, so without it every
# start would compile the framework again (2.5-3x slower start-up).
RUN uv pip install --system --no-cache --no-deps --compile-bytecode .

EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '7860'), timeout=4)"

CMD ["python", "-m", "server.app"]
