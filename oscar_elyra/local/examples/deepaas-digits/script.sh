#!/bin/bash
# deepaas-digits: a DEEPaaS model behind OSCAR, with the request and answer shapes of the
# AI4EOSC marketplace services (ai4os/ai4-papi etc/oscar service script):
#   request  $INPUT_FILE_PATH: a JSON object; each key/value becomes "--key value" for
#            `deepaas-cli predict`; "oscar-files": [{"key", "file_format", "data" (base64)}]
#            are decoded to temporary files passed as "--<key> <file>"; {"help": ""} asks for
#            the model's argument list (argparse help of `deepaas-cli predict`).
#   sync     (a /run body: the input's name holds "event-file"): the answer is the DEEPaaS log,
#            the prediction on its "return: {...}" line (a Python literal).
#   async    (an object "<stem>.json" under the input path): "$TMP_OUTPUT_DIR/<stem>.json" (the
#            prediction, written only on success) and "$TMP_OUTPUT_DIR/<stem>.log" (always).
# Like OSCAR's supervisor, nothing here reports failure by exit code: a failed prediction is
# a log without "return: {...}" (sync) or a .log without its .json (async).
STEM=$(basename "$INPUT_FILE_PATH" | cut -f 1 -d '.')
OUTPUT="$TMP_OUTPUT_DIR/$STEM"
RESULT="$PWD/deepaas-result.json"
python3 - "$RESULT" >service.log 2>&1 <<'PY'
import base64
import json
import os
import subprocess
import sys
import tempfile

result = sys.argv[1]
path = os.environ["INPUT_FILE_PATH"]
keep_output = path.endswith(".json")  # async: a request file; sync: the /run body
if not keep_output:
    os.rename(path, path + ".json")
    path += ".json"
with open(path, encoding="utf-8") as fh:
    params = json.load(fh)
if not isinstance(params, dict):
    sys.exit("[!] the request must be a JSON object of model arguments")

command = ["deepaas-cli"]
if keep_output:
    command += ["--deepaas_method_output", result]
command.append("predict")
for key, value in params.items():
    if key == "oscar-files":
        for item in value:
            fd, name = tempfile.mkstemp(prefix="tmp-file-", suffix="." + item["file_format"], dir=".")
            with os.fdopen(fd, "wb") as out:
                out.write(base64.b64decode(item["data"]))
            print(f"[*] file argument --{item['key']}: {name}")
            command += [f"--{item['key']}", name]
        continue
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, (list, dict)):
        value = repr(value)  # deepaas-cli reads lists and dicts with ast.literal_eval
    command += [f"--{key}", str(value)]
print("[*] command:", " ".join(command[:1] + [a if len(a) < 200 else a[:200] + "..." for a in command[1:]]))
sys.stdout.flush()
subprocess.run(command)
PY

if [ -f "$RESULT" ]; then
  mv "$RESULT" "$OUTPUT.json"
  mv service.log "$OUTPUT.log"
elif echo "$STEM" | grep -q event-file; then
  cat service.log
else
  mv service.log "$OUTPUT.log"
fi
