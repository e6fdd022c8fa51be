"""Page -> main text + metadata (pure work layer; see ``core.extract``).

Imports nothing of faust, Kafka, Elasticsearch or the stages: the extract stage, the
``newsflow extract`` command and ``make eval`` all call ``extract`` the same way.
"""

from streams.extract.core import EXTRACTOR_VERSION, Extraction, ExtractLimits, Status, extract

__all__ = ["EXTRACTOR_VERSION", "ExtractLimits", "Extraction", "Status", "extract"]
