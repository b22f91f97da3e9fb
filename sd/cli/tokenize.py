"""`python -m sd tokenize PROMPT...`: show how CLIP's tokenizer splits a prompt into tokens and ids."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sd.errors import UserError
from sd.loading.tokenizer_files import default_tokenizer, load_tokenizer_folder
from transformer.clip_tokenizer import CONTEXT_LENGTH

EXAMPLES = """\
examples:
  python -m sd tokenize "a caterpillar smoking a hookah"
  python -m sd tokenize --json "a cat" "a dog"     # one {"ids": [...], "tokens": [...]} per line
  python -m sd tokenize --tokenizer weights/sd15/tokenizer "café"

Tokens are byte-level BPE symbols: "</w>" ends a word, and non-ASCII bytes are written with
stand-in characters (so "café" shows as "cafÃ©</w>").
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `tokenize` sub-command."""
    parser = subparsers.add_parser(
        "tokenize",
        help="show the CLIP tokens and ids of prompts",
        description="Tokenize prompts with CLIP's byte-level BPE tokenizer (the one Stable Diffusion\n"
        "uses) and print every token with its id, the start and end tokens included.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("prompts", nargs="+", metavar="PROMPT", help="text to tokenize; quote each prompt")
    parser.add_argument(
        "--tokenizer",
        metavar="FOLDER",
        type=Path,
        help="a diffusers/transformers tokenizer folder (vocab.json, merges.txt); "
        "default: CLIP's merges file shipped in data/",
    )
    parser.add_argument(
        "--max-length",
        type=int,
        default=CONTEXT_LENGTH,
        metavar="N",
        help=f"keep at most N ids, start and end tokens included (default: {CONTEXT_LENGTH}, CLIP's context)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object per prompt and line, {"ids": [...], "tokens": [...]}: '
        "start and end tokens included, no padding",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Tokenize each prompt and print it as a table, or as JSON lines with --json."""
    if args.max_length < 2:
        raise UserError(f"--max-length must be at least 2 (start and end tokens), got {args.max_length}")
    tokenizer = load_tokenizer_folder(args.tokenizer) if args.tokenizer else default_tokenizer()
    for number, prompt in enumerate(args.prompts):
        ids = tokenizer.encode(prompt, max_length=args.max_length)
        tokens = [tokenizer.decoder[i] for i in ids]  # aligned with ids, start and end tokens included
        if args.json:
            print(json.dumps({"ids": ids, "tokens": tokens}))
            continue
        if number:
            print()
        dropped = len(tokenizer.tokenize(prompt)) - (len(ids) - 2)
        note = f", {dropped} tokens cut off" if dropped > 0 else ""
        print(f"prompt: {prompt!r} ({len(ids)} ids of at most {args.max_length}{note})")
        print(f"{'pos':>5}  {'id':>6}  token")
        for position, (token_id, token) in enumerate(zip(ids, tokens, strict=True)):
            print(f"{position:>5}  {token_id:>6}  {token}")
    return 0
