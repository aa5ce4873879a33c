# faqbot: Chainlit UI + JSON API on port 8000. Offline by default; pass OPENAI_API_KEY for the LLM.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

RUN useradd --create-home --uid 10001 faqbot \
 && mkdir -p /data && chown faqbot:faqbot /data
# Writable state (the entry-vector cache) lives outside the code; mount a volume to keep it.
ENV DATA_DIR=/data
COPY --chown=faqbot:faqbot chainlit_app.py chainlit.md ./
COPY --chown=faqbot:faqbot .chainlit ./.chainlit
COPY --chown=faqbot:faqbot faqbot ./faqbot
COPY --chown=faqbot:faqbot public ./public
COPY --chown=faqbot:faqbot faqs ./faqs
USER faqbot

# Fail the build early on broken FAQ files.
RUN python -m faqbot check faqs

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
CMD ["chainlit", "run", "chainlit_app.py", "--headless", "--host", "0.0.0.0", "--port", "8000"]
