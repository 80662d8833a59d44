/* token_cmd: the `wshub token` subcommand, which mints HS256 connection
 * tokens for trying authentication. Main layer: it prints and exits. */
#ifndef WSHUB_TOKEN_CMD_H
#define WSHUB_TOKEN_CMD_H

/* Runs `wshub token ARGS` (argv[0] is "token"). Returns the exit code: 0, 1
 * (the secret file or signing failed) or 2 (bad usage), after printing. */
int token_command(int argc, char **argv);

#endif
