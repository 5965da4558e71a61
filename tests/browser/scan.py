"""Reading a QR code the way a phone does: from pixels. A screenshot of the page as Chromium
drew it goes to `zbarimg` (Debian's zbar-tools), and the code an authenticator app would show
comes from `oathtool` (Debian's oathtool), never from our own TOTP code."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from .support import missing_commands

SCAN_TOOLS = (("zbarimg", "zbar-tools"), ("oathtool", "oathtool"))


def missing_scan_tools() -> list[str]:
    return missing_commands(*SCAN_TOOLS)


def decode_qr(png: Path) -> list[str]:
    """Every QR code zbarimg finds in the image (empty when it finds none)."""
    result = subprocess.run(
        ["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    # exit status 4: no symbol found; anything else but 0 is a real failure
    assert result.returncode in (0, 4), f"zbarimg failed: {result.stderr}"
    return [line for line in result.stdout.splitlines() if line]


@dataclass(frozen=True)
class TotpUri:
    """What an authenticator app reads from an otpauth:// URI."""

    label: str
    secret: str
    issuer: str
    algorithm: str
    digits: int
    period: int

    @classmethod
    def parse(cls, uri: str) -> TotpUri:
        parts = urlsplit(uri)
        assert (parts.scheme, parts.netloc) == ("otpauth", "totp"), f"not a TOTP URI: {uri}"
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        return cls(
            label=unquote(parts.path.lstrip("/")),
            secret=query["secret"],
            issuer=query.get("issuer", ""),
            algorithm=query.get("algorithm", "SHA1").upper(),
            digits=int(query.get("digits", "6")),
            period=int(query.get("period", "30")),
        )

    def code(self) -> str:
        """The code an app shows now, as computed by oathtool."""
        result = subprocess.run(
            [
                "oathtool",
                f"--totp={self.algorithm}",
                f"--digits={self.digits}",
                f"--time-step-size={self.period}s",
                "--base32",
                self.secret,
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return result.stdout.strip()
