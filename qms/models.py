"""Every table the application owns, for Alembic: importing this module registers all
models on the declarative metadata, and the audit tables come from audit.schema."""
from __future__ import annotations

from audit.schema import metadata as audit_metadata
from qms.db import Base
from qms.chain_checks import models as chain_check_models  # noqa: F401
from qms.capa import models as capa_models  # noqa: F401
from qms.change_control import models as change_control_models  # noqa: F401
from qms.deviations import models as deviation_models  # noqa: F401
from qms.documents import models as document_models  # noqa: F401
from qms.erp import models as erp_models  # noqa: F401
from qms.esign import models as esign_models  # noqa: F401
from qms.identity import models as identity_models  # noqa: F401
from qms.inspection import models as inspection_models  # noqa: F401
from qms.materials import models as material_models  # noqa: F401
from qms.records import models as record_models  # noqa: F401

target_metadata = [Base.metadata, audit_metadata]
