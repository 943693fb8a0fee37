"""Command line of tts-sandbox (see the tts-sandbox script): errors are one line on stderr, exit 2."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import deployment, host
from .common import EDITIONS, POSTGRES_MAJORS, REDIS_MAJORS, SandboxError
from .fingerprint import compare, fingerprint


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise SandboxError(message)


def parser() -> argparse.ArgumentParser:
    root = OneLineParser(prog="tts-sandbox", description="A Docker sandbox with stand-in The Things Stack deployments.")
    commands = root.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    commands.add_parser("setup", help="install and start the engine, Compose, registry and images")
    deploy = commands.add_parser("deploy", help="lay out, start and seed a deployment in DIR")
    deploy.add_argument("dir", type=Path)
    deploy.add_argument("--version", required=True)
    deploy.add_argument("--edition", choices=sorted(EDITIONS), default="open-source")
    deploy.add_argument("--redis", choices=REDIS_MAJORS, default="7")
    deploy.add_argument(
        "--postgres",
        choices=POSTGRES_MAJORS,
        help="the Postgres major: 15 by default, 17 (TimescaleDB) for --edition enterprise; 13 and 15 on "
        "Enterprise are plain Postgres under TimescaleDB's image name",
    )
    deploy.add_argument("--seed", choices=sorted(deployment.SEED_SIZES), default="small")
    deploy.add_argument("--ports-offset", type=int, default=None)
    deploy.add_argument(
        "--compose",
        choices=("sandbox", "docs"),
        default="sandbox",
        help="docs: the edition's docker-compose.yml from the docs verbatim (images on latest, through the registry "
        "mirror), its ports moved by docker-compose.override.yml",
    )
    sizes = deploy.add_argument_group("sizes for benchmarks, on top of --seed (deterministic)")
    sizes.add_argument("--extra-blob-files", type=int, default=0, metavar="N", help="N more 20 KiB pictures in blob/")
    sizes.add_argument("--extra-redis-mb", type=int, default=0, metavar="N", help="about N MiB more Redis device data")
    sizes.add_argument("--postgres-mb", type=int, default=0, metavar="N", help="pad ttn_lorawan to at least N MiB")
    print_fingerprint = commands.add_parser("fingerprint", help="print checksums of everything a deployment keeps")
    print_fingerprint.add_argument("dir", type=Path)
    compare_parser = commands.add_parser("compare", help="say whether the data of BEFORE is kept in AFTER")
    compare_parser.add_argument("before", type=Path, help="a fingerprint's JSON file")
    compare_parser.add_argument("after", type=Path, help="a later fingerprint's JSON file")
    teardown = commands.add_parser("teardown", help="stop and remove a deployment (or all of them)")
    target = teardown.add_mutually_exclusive_group(required=True)
    target.add_argument("dir", type=Path, nargs="?")
    target.add_argument("--all", action="store_true")
    return root


def main(argv: list[str]) -> int:
    try:
        args = parser().parse_args(argv)
        if args.command == "setup":
            host.setup()
        elif args.command == "deploy":
            summary = deployment.deploy(
                args.dir,
                args.version,
                edition=args.edition,
                redis=args.redis,
                postgres=args.postgres,
                seed=args.seed,
                ports_offset=args.ports_offset,
                extra_blob_files=args.extra_blob_files,
                extra_redis_mb=args.extra_redis_mb,
                postgres_mb=args.postgres_mb,
                layout=args.compose,
            )
            print(json.dumps(summary, indent=2))
        elif args.command == "fingerprint":
            print(json.dumps(fingerprint(args.dir), indent=2, sort_keys=True))
        elif args.command == "compare":
            report, kept = compare(args.before, args.after)
            print(report)
            return 0 if kept else 1
        elif args.all:
            deployment.teardown_all()
        else:
            deployment.teardown(args.dir)
    except SandboxError as error:
        print(f"tts-sandbox: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
