"""Classification of residents' messages: a label (:data:`LABELS`) and an emergency flag.

* :mod:`~handlers.classify.normalise` — one spelling for every writer (tables in
  ``data/normalise.txt``);
* :mod:`~handlers.classify.model` — the trained linear model over character n-grams, served from
  ``data/model.npz`` with numpy;
* :mod:`~handlers.classify.rules` — the small rule layer: what must never be missed, what must
  never fire, fraud advice;
* :mod:`~handlers.classify.evaluate` — metrics and the forward protocol;
  :mod:`~handlers.classify.train` rebuilds the weights (``lianxin classify train``, needs the
  ``[train]`` extra).

The labelled messages are in ``corpus/``.  This package imports only the standard library,
numpy, opencc and its own files (scikit-learn only when training).  See docs/classifier.md.
"""

from handlers.classify.classifier import Classification, Classifier, without_ticket_codes
from handlers.classify.model import LABELS
from handlers.classify.normalise import normalise
from handlers.classify.rules import CHATTER, FRAUD_PAID, SCAM_CHECK, SCAM_NOW, SCAM_SCRIPT

# CHATTER, FRAUD_PAID, SCAM_CHECK, SCAM_SCRIPT and SCAM_NOW are concepts in
# Classification.matched that the handlers act on: thanks and greetings; money already paid to
# a fraudster (stop-payment advice); a question whether a demand is a scam, or a fraudster's
# script told (the anti-fraud warning); money leaving now (the safety reply says stop the
# transfer, 96110).
__all__ = [
    "CHATTER",
    "FRAUD_PAID",
    "LABELS",
    "SCAM_CHECK",
    "SCAM_NOW",
    "SCAM_SCRIPT",
    "Classification",
    "Classifier",
    "normalise",
    "without_ticket_codes",
]
