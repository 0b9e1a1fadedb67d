"""Networks: backbones and the classifiers / heads built on them."""
