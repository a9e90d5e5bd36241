# lit configuration for the compiler and tool tests.
import os
import lit.formats

config.name = "ttt"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(os.path.dirname(config.ttt_tools_dir), "test")
config.excludes = ["runtime", "Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py.in"]

# The tokenizer search (runtime/data) reads these; lit clears the environment otherwise.
for name in ["HOME", "XDG_CACHE_HOME", "TTT_CACHE_DIR", "HF_HOME", "HF_HUB_CACHE",
             "HF_DATASETS_CACHE", "HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"]:
    if name in os.environ:
        config.environment[name] = os.environ[name]

# Captured FileCheck variables do not leak across CHECK-LABELs.
config.environment["FILECHECK_OPTS"] = "--enable-var-scope"

tool_dirs = [config.ttt_tools_dir, config.llvm_tools_dir]
config.environment["PATH"] = os.pathsep.join(tool_dirs + [config.environment.get("PATH", "")])
config.substitutions.append(("%src", config.ttt_source_dir))
config.substitutions.append(("%build", os.path.dirname(config.ttt_tools_dir)))
config.substitutions.append(("%models", os.path.join(config.ttt_source_dir, "models")))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))
config.substitutions.append(("%python", config.ttt_python))
if config.ttt_have_cuda:
    config.available_features.add("cuda")
