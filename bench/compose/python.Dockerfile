# Stand-in for python:3.11-slim-bookworm where Docker Hub cannot be reached: Debian bookworm's
# own Python 3.11 and pip on a debootstrap minbase (bench/compose_stack.py imports it as
# $BOOKWORM). pip finds the torch CPU wheel in /wheels (copied from this machine) and the rest
# on PyPI through the host's certificate bundle.
ARG BOOKWORM
FROM ${BOOKWORM}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3-pip python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /usr/bin/python3.11 /usr/local/bin/python \
 && ln -sf /usr/bin/pip3 /usr/local/bin/pip \
 && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
COPY wheels/ /wheels/
COPY ca-certificates.crt /etc/ssl/certs/host-ca.crt
# PyPI as an extra index: the PyTorch index (the cpu target's --index-url, which also serves
# torch's dependencies) cannot be reached from here; retries 0 fails over to PyPI at once.
RUN printf '[global]\nfind-links = /wheels\nextra-index-url = https://pypi.org/simple\ncert = /etc/ssl/certs/host-ca.crt\nretries = 0\ntimeout = 20\n' \
    > /etc/pip.conf
