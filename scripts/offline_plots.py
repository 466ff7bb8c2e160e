"""Build .dvc/plots/offline.html: the page template of `dvc plots show` with Vega, Vega-Lite and
vega-embed inlined, so the plots draw without a network (DVC's own template loads them from a
CDN: offline the page stays blank). .dvc/config names it (`plots.html_template`).

The three libraries (BSD-3-Clause) come from the npm registry at pinned versions, checked
against their sha256. Run it again only to change a version:

    .venv/bin/python scripts/offline_plots.py
"""

import hashlib
import io
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".dvc/plots/offline.html"
# (package, version, sha256 of the npm tarball, the file in it)
LIBRARIES = (
    ("vega", "5.33.0", "7b61f992d1a1e196e7f2eeb3d6176e5694949d0d4bbfea237a842d523dd6e1f3"),
    ("vega-lite", "5.23.0", "e4cbfdd8f6f1abe381c59cd558fd6a559c12b1496bfdf2e0c3295263a40fe4da"),
    ("vega-embed", "6.29.0", "ecf1ee709c2bac9e0a4ead6908114b05b62c71493e10a8a4308109bb070f8eb1"),
)
PAGE = """<!DOCTYPE html>
<html>
<head>
{{refresh_tag}}
<meta charset="utf-8">
<title>DVC plots (genbench)</title>
<!-- Built by scripts/offline_plots.py: {names}, inlined (BSD-3-Clause,
     https://github.com/vega), so this page needs no network. -->
{scripts}
<style> table {{ border-spacing: 15px; }} </style>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


def library(name: str, version: str, sha256: str) -> str:
    """build/<name>.min.js of the package's npm tarball, checked against `sha256`."""
    url = f"https://registry.npmjs.org/{name}/-/{name}-{version}.tgz"
    with urllib.request.urlopen(url, timeout=60) as response:
        data = response.read()
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        raise SystemExit(f"{url}: sha256 {found}, expected {sha256}")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        member = archive.extractfile(f"package/build/{name}.min.js")
        code = member.read().decode()
    # the template's placeholders are DVC's: none may appear inside the code
    for placeholder in ("{plot_divs}", "{scripts}", "{refresh_tag}", "</script"):
        if placeholder in code:
            raise SystemExit(f"{name}.min.js contains {placeholder!r}: cannot inline it")
    return code


def main() -> None:
    scripts = "\n".join(
        f"<script>/* {name} {version} */\n{library(name, version, sha)}\n</script>"
        for name, version, sha in LIBRARIES
    )
    names = ", ".join(f"{name} {version}" for name, version, _ in LIBRARIES)
    OUT.write_text(PAGE.format(names=names, scripts=scripts), encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size / 1e6:.2f} MB ({names})")


if __name__ == "__main__":
    main()
