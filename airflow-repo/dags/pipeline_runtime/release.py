"""Which image of each subproject this environment runs: read from git's desired state.

`environments/<env>/release.yaml` is written only by the promotion tool, so
the image a pod starts is exactly the digest a reviewed commit put there, and
never a mutable tag. The registry (region and project) is configuration
(`PLATFORM_IMAGE_REGISTRY`), which keeps project ids out of the repository.

The file comes from `PLATFORM_RELEASE_FILE`, or from
`PLATFORM_ENVIRONMENTS_DIR/<PLATFORM_ENVIRONMENT>/release.yaml` (on Kubernetes
the chart mounts it from a ConfigMap rendered from the same file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline_runtime.settings import settings

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# The dashboard publisher ships in the dbt image; every other command has its own.
IMAGE_OF_COMPONENT = {
    "scripts": "scripts",
    "dbt": "dbt",
    "dashboard": "dbt",
    "warehouse_snapshot": "dbt",
    "docs": "dbt",
    "data_export": "dbt",
}


class ReleaseError(RuntimeError):
    """The environment's release file cannot say which image to run."""


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    image: str
    digest: str | None
    # The build a forward promotion replaced, allowed to run until the new one passes its checks.
    previous_digest: str | None = None


@dataclass(frozen=True)
class Release:
    environment: str
    components: dict[str, Component]

    def component(self, name: str) -> Component:
        try:
            return self.components[name]
        except KeyError:
            raise ReleaseError(f"{self.environment}: the release file has no component {name!r}") from None

    def image_ref(self, component: str, registry: str | None = None) -> str:
        """`<registry>/<image>@sha256:...`: the only form a pod is ever started from."""
        entry = self.component(IMAGE_OF_COMPONENT.get(component, component))
        if not entry.digest:
            raise ReleaseError(
                f"{self.environment}: {entry.name} {entry.version} has no image digest; "
                "it was never built and promoted here, so it cannot run"
            )
        return f"{_registry(registry)}/{entry.image}@{entry.digest}"

    def image_name(self, component: str) -> str:
        """`<image>@sha256:...`: the image without the registry, which names the project."""
        return self.image_ref(component, registry="-").removeprefix("-/")

    def allowed_image_refs(self, component: str, registry: str | None = None) -> list[str]:
        """Every image a pod of `component` may start from: the release's, then the one it replaced."""
        entry = self.component(IMAGE_OF_COMPONENT.get(component, component))
        refs = [self.image_ref(component, registry)]
        if entry.previous_digest and entry.previous_digest != entry.digest:
            refs.append(f"{_registry(registry)}/{entry.image}@{entry.previous_digest}")
        return refs

    def chosen_image_ref(self, component: str, validated: str | None, registry: str | None = None) -> str:
        """The image `component` runs: the validated build if the release still names it, else its own.

        `validated` is what the environment's own checks last adopted (the
        dbt build `dbt_image_refresh` recorded). It runs only while the
        release allows it; anything else runs the release's digest, so a
        GitOps rollback takes effect at once and a typed value chooses nothing.
        """
        allowed = self.allowed_image_refs(component, registry)
        return validated if validated in allowed else allowed[0]


def _registry(registry: str | None = None) -> str:
    registry = registry or settings().image_registry
    if not registry:
        raise ReleaseError(
            "PLATFORM_IMAGE_REGISTRY is not set (e.g. <region>-docker.pkg.dev/<project>/<repo>)"
        )
    return registry.rstrip("/")


def release_path() -> Path:
    current = settings()
    return current.release_file or current.environments_dir / current.environment / "release.yaml"


def load_release(path: Path | None = None) -> Release:
    path = path or release_path()
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ReleaseError(
            f"no release file at {path} (PLATFORM_RELEASE_FILE / PLATFORM_ENVIRONMENTS_DIR)"
        ) from None
    environment = str(document.get("environment", path.parent.name))
    components = {}
    for name, entry in (document.get("components") or {}).items():
        digests = [entry.get("digest"), entry.get("previous_digest")]
        for digest in digests:
            if digest is not None and not DIGEST.match(str(digest)):
                raise ReleaseError(f"{path}: {name} digest {digest!r} is not sha256:<64 hex>")
        components[name] = Component(name, str(entry["version"]), str(entry.get("image", name)), *digests)
    return Release(environment, components)


def with_registry(image: str) -> str:
    """`<registry>/<image>@sha256:...` for an image named without its registry."""
    return f"{_registry()}/{image}"


def without_registry(reference: str | None) -> str | None:
    """What may be shown of an image reference: the registry (which names the project) removed."""
    registry = settings().image_registry
    if reference and registry and reference.startswith(f"{registry}/"):
        return reference.removeprefix(f"{registry}/")
    return reference
