# kamado's image for docker-compose.yml: the scheduler, Flower and workers.
# Debian's ffmpeg has libx264 (software) and VAAPI; the Intel VA drivers are included so
# the same image serves a /dev/dri worker (i965 for Haswell, iHD for Broadwell and newer).
# libavcodec-extra brings ffmpeg's ARIB caption decoder (libaribb24): captions are kept.
FROM python:3.11-slim-bookworm

ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ffmpeg \
        libavcodec-extra \
        intel-media-va-driver \
        i965-va-driver \
        vainfo \
        tini \
    && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged account; the GPU worker adds the host's render group at run time.
RUN groupadd --system --gid 10001 kamado \
    && useradd --system --uid 10001 --gid kamado --home-dir /var/lib/kamado \
        --shell /usr/sbin/nologin kamado \
    && install -d -o kamado -g kamado -m 0750 /var/lib/kamado /etc/kamado

COPY . /src
RUN python -m venv /opt/kamado/venv \
    && /opt/kamado/venv/bin/pip install --no-cache-dir /src \
    && rm -rf /src

ENV PATH=/opt/kamado/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    KAMADO_CONFIG=/etc/kamado/kamado.toml \
    KAMADO_STATE_DIR=/var/lib/kamado

USER kamado
WORKDIR /var/lib/kamado
# tini reaps ffmpeg children and passes SIGTERM on to kamado.
ENTRYPOINT ["/usr/bin/tini", "--", "kamado"]
CMD ["--help"]
