/* placeholder list until the ops commands land */
#include "cli.h"
const cli_command cli_ops_commands[] = {{NULL, NULL, NULL, NULL}};
