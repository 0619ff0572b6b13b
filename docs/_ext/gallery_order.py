"""The order of the gallery: posterior VI first, from the classic example to large data and choices; then
conjugate models, VAEs and compression."""

ORDER = [
    "plot_eight_schools.py",
    "plot_which_method.py",
    "plot_families.py",
    "plot_model_comparison.py",
    "plot_million_rows.py",
    "plot_torchrun.py",
    "plot_stan_pymc.py",
    "plot_gmm_vs_sklearn.py",
    "plot_lda_topics.py",
    "plot_vae_mnist.py",
    "plot_compress_photo.py",
    "plot_bits_back.py",
]


class ExampleOrder:
    """Sort key for sphinx-gallery's ``within_subsection_order``: the position in ``ORDER`` (others last, by name)."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename: str):
        return (ORDER.index(filename), filename) if filename in ORDER else (len(ORDER), filename)

    def __repr__(self):
        return "<ExampleOrder>"
