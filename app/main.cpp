#include "app/cli.h"

int main(int argc, char** argv) { return t2v::run_cli(argc, argv); }
