"""Static validation of docker-compose.yml (no Docker engine needed): prints a JSON summary."""
import json
import sys

import yaml

doc = yaml.safe_load(open(sys.argv[1]))
services = doc["services"]
out = {"services": {}, "volumes": sorted((doc.get("volumes") or {}).keys()), "errors": []}
for name, svc in services.items():
    if "image" not in svc and "build" not in svc:
        out["errors"].append(f"{name}: no image or build")
    for dep in (svc.get("depends_on") or []):
        if dep not in services:
            out["errors"].append(f"{name}: depends on unknown service {dep}")
    for vol in svc.get("volumes") or []:
        src = vol.split(":")[0]
        if not src.startswith(".") and not src.startswith("/") and src not in out["volumes"]:
            out["errors"].append(f"{name}: unknown volume {src}")
    cmd = svc.get("command")
    out["services"][name] = {
        "image": svc.get("image"),
        "command": cmd if isinstance(cmd, list) else (cmd.split() if cmd else []),
        "env": svc.get("environment") or {},
        "replicas": ((svc.get("deploy") or {}).get("replicas")),
        "dockerfile": (svc.get("build") or {}).get("dockerfile"),
    }
print(json.dumps(out))
