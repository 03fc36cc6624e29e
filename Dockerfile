# Image of the OSCAR palette components (components/*.yaml run `python -m oscar_elyra.palette.<name>`).
#
# The image tag is defined once, in oscar_elyra.elyra.COMPONENT_IMAGE (derived from the package
# version); every component YAML names exactly that tag (tests/test_components.py checks it).
# Build and push it with:
#   IMAGE=$(python -c 'from oscar_elyra.elyra import COMPONENT_IMAGE; print(COMPONENT_IMAGE)')
#   docker build -t "$IMAGE" . && docker push "$IMAGE"
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/oscar-elyra

COPY pyproject.toml ./
COPY oscar_elyra ./oscar_elyra
# README.md is the project's readme (pyproject refers to it); an empty one is enough to build.
RUN touch README.md \
 && pip install . "scikit-learn>=1.3,<2" "pillow>=10,<14" "numpy>=1.24" \
 && useradd --create-home --uid 1000 oscar

# Connection settings and secrets come from the environment: OSCAR_ENDPOINT, OSCAR_USER,
# OSCAR_PASSWORD or OSCAR_TOKEN / OSCAR_REFRESH_TOKEN, OSCAR_SSL_VERIFY. On Kubeflow a PodDefault
# injects them into pods labelled oscar-credentials=true (`oscar-elyra kfp credentials`).
USER 1000
WORKDIR /home/oscar
CMD ["python", "-m", "oscar_elyra.palette"]
