"""Suite-wide settings: hypothesis profiles chosen by MEMDB_HYPOTHESIS_PROFILE (dev | ci | nightly)."""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("nightly", max_examples=2000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("MEMDB_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
