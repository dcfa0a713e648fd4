"""The dashboard's pages, one module per feature; ``access`` holds the role and 404 helpers."""
