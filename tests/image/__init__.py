"""Image tier: the container image built from the repository's Dockerfile (scripts/build-image.sh)."""
