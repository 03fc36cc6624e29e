#!/bin/sh
# cowsay, like OSCAR's example: {"message": "..."} (JSON) or plain text in, a cow out (stdout).
# Works in ghcr.io/grycap/cowsay (cowsay + jq) and on hosts without them.
message() {
  if command -v jq >/dev/null 2>&1 && jq -e 'type == "object"' "$INPUT_FILE_PATH" >/dev/null 2>&1; then
    jq -r '.message // empty' "$INPUT_FILE_PATH"
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c '
import json, sys
raw = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
try:
    doc = json.loads(raw)
    print(doc.get("message", "") if isinstance(doc, dict) else doc)
except ValueError:
    print(raw.rstrip("\n"))
' "$INPUT_FILE_PATH"
  else
    cat "$INPUT_FILE_PATH"
  fi
}

MSG="$(message)"
[ -n "$MSG" ] || MSG="Moo! (send {\"message\": \"...\"})"
if command -v cowsay >/dev/null 2>&1; then
  printf '%s\n' "$MSG" | cowsay
elif [ -x /usr/games/cowsay ]; then
  printf '%s\n' "$MSG" | /usr/games/cowsay
else
  printf '%s\n' "$MSG" | awk '
    { line[NR] = $0; if (length($0) > w) w = length($0) }
    END {
      bar = ""; for (i = 0; i < w + 2; i++) bar = bar "-"
      top = ""; for (i = 0; i < w + 2; i++) top = top "_"
      print " " top
      for (i = 1; i <= NR; i++) {
        l = "<"; r = ">"
        if (NR > 1) { l = (i == 1) ? "/" : (i == NR) ? "\\" : "|"; r = (i == 1) ? "\\" : (i == NR) ? "/" : "|" }
        printf "%s %-" w "s %s\n", l, line[i], r
      }
      print " " bar
      print "        \\   ^__^"
      print "         \\  (oo)\\_______"
      print "            (__)\\       )\\/\\"
      print "                ||----w |"
      print "                ||     ||"
    }'
fi
