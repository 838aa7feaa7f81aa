"""What the appliance asks of its VM: the context variables configure.sh reads, and the CPU
features each framework's wheels need. Defined once here for the listing and the build.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContextSetting:
    """One context variable, in OpenNebula's user-input terms."""

    name: str
    kind: str  # OpenNebula user-input type: fixed, text, text64, boolean, number
    description: str
    required: bool
    default: str = ""

    def user_input(self, fixed_value: str | None = None) -> str:
        """``M|type|description|options|default`` as OpenNebula's VM templates write it."""
        flag = "M" if self.required else "O"
        default = fixed_value if fixed_value is not None else self.default
        return f"{flag}|{self.kind}|{self.description}| |{default}"


# Read by elements/fsn-appliance/fsn-appliance-files/configure.sh, in this order.
CONTEXT_SETTINGS = (
    ContextSetting("ML_FRAMEWORK", "fixed", "ML framework of this appliance", True),
    ContextSetting("SUPERLINK_ADDRESS", "text", "SuperLink Fleet API address (HOST:PORT)", True),
    ContextSetting(
        "SUPERNODE_INSECURE", "boolean", "Connect without TLS (--insecure)", False, "NO"
    ),
    ContextSetting("SUPERNODE_ROOT_CERTIFICATES", "text64", "CA certificates (PEM) for TLS", False),
    ContextSetting(
        "SUPERNODE_NODE_CONFIG", "text", "Node config, e.g. partition-id=0 num-partitions=2", False
    ),
    ContextSetting(
        "SUPERNODE_CLIENTAPPIO_ADDRESS", "text", "ClientAppIo API address (HOST:PORT)", False
    ),
    ContextSetting(
        "SUPERNODE_MAX_RETRIES", "number", "Connection attempts before giving up", False
    ),
    ContextSetting("SUPERNODE_MAX_WAIT_TIME", "number", "Seconds to keep reconnecting", False),
)

# x86-64-v2: NumPy 2.x wheels need SSE4.1/4.2 and POPCNT; /proc/cpuinfo spells the level so.
X86_64_V2 = ("cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3")
# TensorFlow's wheels are built with AVX and die with an illegal instruction without it.
_EXTRA_FLAGS = {"tensorflow": ("avx",)}
# CPU models that have those flags: Nehalem is x86-64-v2; Sandy Bridge adds AVX.
_CPU_MODELS = {"tensorflow": "SandyBridge"}


@dataclass(frozen=True)
class CpuNeeds:
    flags: tuple[str, ...]
    model: str

    @classmethod
    def of(cls, framework: str) -> CpuNeeds:
        flags = tuple(sorted(X86_64_V2 + _EXTRA_FLAGS.get(framework, ())))
        return cls(flags, _CPU_MODELS.get(framework, "Nehalem"))
