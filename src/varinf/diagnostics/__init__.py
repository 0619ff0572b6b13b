"""Did the fit work? PSIS k-hat, log evidence (IS, bridge sampling, AIS), ArviZ export and plots (README.md here).

ArviZ (optional, ``pip install 'varinf[arviz]'``) is imported only in :mod:`.arviz_adapter`.
"""

from ..errors import DiagnosticWarning
from .annealed_importance import ais
from .bridge_sampling import bridge
from .diagnosis import Diagnostics, diagnose, diagnose_q
from .evidence_policy import evidence
from .evidence_result import LogEvidence
from .export import from_inference_data, to_inference_data
from .importance import ImportanceDraws, importance_draws, importance_log_evidence, log_evidence
from .plots import flatten_draws, plot_elbo_trace, plot_marginals, save_figure
from .psis_weights import KHAT_GOOD, KHAT_MAX, PSISResult, khat_threshold, khat_verdict, psis

__all__ = [
    "KHAT_GOOD",
    "KHAT_MAX",
    "DiagnosticWarning",
    "Diagnostics",
    "ImportanceDraws",
    "LogEvidence",
    "PSISResult",
    "ais",
    "bridge",
    "diagnose",
    "diagnose_q",
    "evidence",
    "flatten_draws",
    "from_inference_data",
    "importance_draws",
    "importance_log_evidence",
    "khat_threshold",
    "khat_verdict",
    "log_evidence",
    "plot_elbo_trace",
    "plot_marginals",
    "psis",
    "save_figure",
    "to_inference_data",
]
