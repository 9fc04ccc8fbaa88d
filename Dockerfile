# kamado's image for docker-compose.yml: the scheduler, Flower and workers.
# Debian's ffmpeg has libx264 (software), VAAPI and QSV; the GPU packages come from the
# generation table (worker/backends/generations.py) so the same image serves a /dev/dri
# worker on every generation it lists: i965 for Haswell, the non-free iHD (the free one
# has no H.264 encode on Broadwell..Ice Lake) and both QSV runtimes for the rest.
# --build-arg NON_FREE=0 builds from Debian main only (no H.264 encode on Broadwell..Ice Lake).
FROM python:3.11-slim-bookworm

ARG DEBIAN_FRONTEND=noninteractive
ARG NON_FREE=1
COPY worker/__init__.py /tmp/table/worker/
COPY worker/backends/__init__.py worker/backends/gpu_ids.py worker/backends/generations.py \
    /tmp/table/worker/backends/
RUN if [ "$NON_FREE" = 1 ]; then \
        sed -i 's/^Components: main$/Components: main non-free non-free-firmware/' \
            /etc/apt/sources.list.d/debian.sources; \
        flag=--non-free; \
    fi \
    && packages=$(cd /tmp/table && python3 -m worker.backends.generations packages $flag) \
    && apt-get update \
    && apt-get install -y --no-install-recommends $packages tini \
    && rm -rf /var/lib/apt/lists/* /tmp/table

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
