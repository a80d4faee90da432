"""The release module's registrations with the materials module (qms.materials.hooks), made
when this module is imported (qms.release.init_release, at application start), so that every
path that moves a batch (API, CLI, demo data) checks the release gates, makes the batch's lot
follow the decision, and keeps the batch's inspectors from releasing it."""
from __future__ import annotations

from qms.materials.hooks import (batch_owners, batch_transition_checks,
                                 batch_transition_consequences)
from qms.release.service import (check_batch_transition, follow_batch_transition,
                                 inspection_people, production_people)

for registry, callback in ((batch_transition_checks, check_batch_transition),
                           (batch_transition_consequences, follow_batch_transition),
                           (batch_owners, inspection_people),
                           (batch_owners, production_people)):
    if callback not in registry:
        registry.append(callback)
