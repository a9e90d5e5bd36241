// How ttt-run's pieces plug together: exit codes, the one-line error format, and the registration
// function each subcommand file provides.
//
// Adding a subcommand (e.g. `ttt-run data ...`): write <Name>Command.cpp defining
// `void register<Name>Command(CLI::App &app, CommandSelection &selection)` (declare it below), add it to
// kSubcommands in main.cpp and to the sources in CMakeLists.txt, and document it in docs/cli.md.
#pragma once

#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace ttt::run {
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,        // bad input (plan, data, flags' values), no device, I/O failure
  kExitUnavailable = 2,  // usage error, or a mode this build does not have yet
};

// What the command line chose. A subcommand's CLI11 callback only stores its action here; main()
// runs it after the whole command line has been checked, and returns its exit code.
struct CommandSelection {
  std::function<int()> action;
};

// Prints "ttt-run: error: MESSAGE" as one line on stderr (newlines in MESSAGE become "; ") and
// returns kExitError. MESSAGE names the file or device concerned and says what to do.
int reportError(const std::string &message);
// Prints "ttt-run: MESSAGE" on stderr: notes that are not failures of the input.
void reportNote(const std::string &message);

// Subcommands, one file each.
void registerDevicesCommand(CLI::App &app, CommandSelection &selection);  // DevicesCommand.cpp
void registerDataCommand(CLI::App &app, CommandSelection &selection);     // DataCommand.cpp
void registerKernelCheckCommand(CLI::App &app, CommandSelection &selection); // KernelCheckCommand.cpp
} // namespace ttt::run
