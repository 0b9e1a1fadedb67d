"""One module per DVC stage; each is run as ``python -m pipeline.<stage>`` from the project root."""
