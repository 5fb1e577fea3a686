FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DJANGO_SETTINGS_MODULE=layra.settings
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential pkg-config libmariadb-dev libreoffice-core libreoffice-writer-nogui \
      libreoffice-impress-nogui libreoffice-calc-nogui fonts-dejavu-core bubblewrap \
    && rm -rf /var/lib/apt/lists/*
# The worker runs as this unprivileged user (docker-compose.yml); code nodes then start bubblewrap directly, in
# user namespaces it may create (workflows/SANDBOX.md). HOME is for LibreOffice's profile.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/layra layra
WORKDIR /app
COPY requirements.txt requirements-ml.txt ./
# On a GPU host pass --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 for the CUDA build.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --index-url ${TORCH_INDEX} -r requirements-ml.txt \
    && pip install -r requirements.txt flower \
    && pip install --no-deps colpali-engine==0.3.18
COPY . .
# Throwaway keys for this one command (settings refuse to load without keys); the image keeps none.
RUN python -m layra.keyfiles /tmp && DATA_DIR=/tmp python manage.py collectstatic --noinput && rm -rf /tmp/secrets \
    && mkdir -p /app/data && chown layra:layra /app/data
EXPOSE 8000
CMD ["gunicorn", "layra.wsgi:application", "-b", "0.0.0.0:8000"]
