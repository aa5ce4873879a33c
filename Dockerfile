# faqbot: Chainlit UI + JSON API on port 8000. Offline by default; pass OPENAI_API_KEY for the LLM.
#   docker build -t faqbot . && docker run -p 8000:8000 -v faqbot-data:/data faqbot
# The code in /app is owned by root and read-only; the app runs as uid 10001 and writes only
# under DATA_DIR=/data (vector cache, Chainlit's session files, any SQLite file).
# CI builds this file with buildah (.ci/image, on a stand-in base: `--from`) and
# tests/test_image_real.py runs the image as its user; where buildah is unavailable,
# tests/test_container_emulation.py rebuilds this layout without a container and runs it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN pip install -r requirements.txt

COPY chainlit_app.py chainlit.md ./
COPY .chainlit ./.chainlit
COPY faqbot ./faqbot
COPY faqbot_chainlit ./faqbot_chainlit
COPY public ./public
COPY faqs ./faqs
# Chainlit writes .chainlit/translations/ when it is missing (a fresh clone): write it now, as
# root, so the running app never writes in /app; then make the code read-only. Fail the build
# early on broken FAQ files.
RUN chainlit init && rm -rf .files \
 && chmod -R a-w,a+rX /app \
 && python -m faqbot check faqs

RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent faqbot \
 && mkdir -p /data && chown faqbot:faqbot /data
ENV DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=8000
USER faqbot

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/health/ready' % os.environ.get('PORT', '8000'), timeout=4)"
# Honours HOST, PORT, RELOAD, DEBUG and DATA_DIR; exits 1 if the port is taken or /data is not
# writable by uid 10001.
CMD ["python", "-m", "faqbot", "serve"]
