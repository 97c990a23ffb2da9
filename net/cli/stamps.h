/* What the commands stamp on events and log lines: a new event id and the time of day. */
#ifndef RC_NET_CLI_STAMPS_H
#define RC_NET_CLI_STAMPS_H

/* Length of rc__cli_uuid4's text, with its NUL. */
#define RC_CLI_UUID_SIZE 37

/** Writes a random (version 4) UUID, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", lower case and
 *  NUL-terminated, into `out`. Uses getrandom; should that fail, a value mixed from the clock
 *  and the pid (unique enough for demo events, not random). Any thread. */
void rc__cli_uuid4(char out[RC_CLI_UUID_SIZE]);

/** Writes the wall-clock time of day in UTC as "HH:MM:SS.mmmZ" (NUL-terminated) into `buf`: the
 *  first field of the sink's and the repeating send's log lines. Any thread. */
void rc__cli_time_of_day(char buf[32]);

#endif
