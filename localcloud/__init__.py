"""The local cloud: deploys template.yaml into moto and runs the whole flow in one process, without Docker.

Every moto workaround lives in `localcloud.patches`; everything else here is ordinary boto3 against moto.
"""

from localcloud.cloud import LocalCloud

__all__ = ["LocalCloud"]
