"""String enums Lightning code compares against plain strings (`GradClipAlgorithmType.NORM == "norm"`)."""

from __future__ import annotations

from enum import Enum

__all__ = ["GradClipAlgorithmType", "LightningEnum"]


class LightningEnum(str, Enum):
    """A str Enum whose members equal their value in any letter case."""

    @classmethod
    def from_str(cls, value: str, source: str = "key") -> LightningEnum:
        """The member named (source='key') or valued (source='value') `value`, case-insensitively."""
        for member in cls:
            if (member.name if source == "key" else member.value).lower() == value.lower():
                return member
        choices = ", ".join(m.name if source == "key" else m.value for m in cls)
        raise ValueError(f"{cls.__name__}: {value!r} is not one of {choices}")

    def __eq__(self, other: object) -> bool:
        other = other.value if isinstance(other, Enum) else other
        return isinstance(other, str) and self.value.lower() == other.lower()

    def __hash__(self) -> int:
        return hash(self.value.lower())


class GradClipAlgorithmType(LightningEnum):
    """How `gradient_clip_val` clips: by total norm or by value."""

    VALUE = "value"
    NORM = "norm"

    @staticmethod
    def supported_type(val: str) -> bool:
        return any(x.value == val for x in GradClipAlgorithmType)

    @staticmethod
    def supported_types() -> list[str]:
        return [x.value for x in GradClipAlgorithmType]
