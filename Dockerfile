# Two images from one file (docker-compose.yml builds both):
#   target `cpu`: web, the CPU worker, beat, flower and the one-shot init (torch's CPU wheel);
#   target `gpu`: the GPU workers (torch's CUDA wheel, which brings its own CUDA runtime; the host needs the NVIDIA
#                 driver and container toolkit). TORCH_CUDA_INDEX picks the CUDA version.
# Neither holds the test tools (requirements-dev.txt) or any key; both run as the unprivileged user `layra`.

FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DJANGO_SETTINGS_MODULE=layra.settings \
    PATH=/opt/venv/bin:$PATH STATIC_ROOT=/app/staticfiles
# Run time only: the MariaDB client library, LibreOffice (office files to PDF), fonts, bubblewrap (code nodes).
RUN apt-get update && apt-get install -y --no-install-recommends \
      libmariadb3 libreoffice-core libreoffice-writer-nogui libreoffice-impress-nogui libreoffice-calc-nogui \
      fonts-dejavu-core bubblewrap \
    && rm -rf /var/lib/apt/lists/*
# Every process runs as this user; the worker's code nodes then start bubblewrap directly, in user namespaces it
# may create (workflows/SANDBOX.md). HOME is for LibreOffice's profile.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/layra layra
WORKDIR /app

# Compilers and headers stay in this stage: the images get the finished venv only.
FROM runtime AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential pkg-config libmariadb-dev \
    && rm -rf /var/lib/apt/lists/* && python -m venv /opt/venv
COPY requirements.txt requirements-ml.txt ./

FROM build AS venv-cpu
RUN pip install --index-url https://download.pytorch.org/whl/cpu -r requirements-ml.txt \
    && pip install -r requirements.txt flower==2.2.0 \
    && pip install --no-deps colpali-engine==0.3.18

FROM build AS venv-gpu
ARG TORCH_CUDA_INDEX=https://download.pytorch.org/whl/cu128
RUN pip install --index-url ${TORCH_CUDA_INDEX} -r requirements-ml.txt \
    && pip install -r requirements.txt \
    && pip install --no-deps colpali-engine==0.3.18

FROM runtime AS gpu
COPY --from=venv-gpu /opt/venv /opt/venv
COPY . .
RUN mkdir -p /app/data && chown layra:layra /app/data
USER layra
CMD ["celery", "-A", "layra", "worker", "-Q", "gpu,gpu_query", "-c", "1", "-l", "INFO"]

# Last, so a plain `docker build .` makes the CPU image.
FROM runtime AS cpu
COPY --from=venv-cpu /opt/venv /opt/venv
COPY . .
# Static files for whitenoise, collected once into the image (STATIC_ROOT). Throwaway keys for this one command
# (settings refuse to load without keys); the image keeps none.
RUN python -m layra.keyfiles /tmp/build && DATA_DIR=/tmp/build python manage.py collectstatic --noinput \
    && rm -rf /tmp/build && mkdir -p /app/data && chown layra:layra /app/data
USER layra
EXPOSE 8000
CMD ["gunicorn", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "layra.wsgi:application"]
