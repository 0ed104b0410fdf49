// The CLI is run as a program (dist/main.js, the `annals` bin); it exports nothing.
export {};
