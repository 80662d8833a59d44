/* response: HTTP response heads (status line, Server, Date, the caller's
 * headers, Content-Length, Connection) and the IMF-fixdate of RFC 9110. Pure:
 * it never reads a clock, the time zone or the locale, does no I/O and keeps
 * no globals; the Date cache is the caller's struct. */
#include "response.h"

#include <stdio.h>
#include <string.h>

#include "http.h"

#define YEAR_0000 (-62167219200LL)   /* 0000-01-01T00:00:00Z */
#define YEAR_9999 253402300799LL     /* 9999-12-31T23:59:59Z */

static const char wday_names[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Proleptic Gregorian year, month (1-12) and day from days since 1970-01-01
 * (Howard Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static char *put_digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + n;
}

/* Writes the 29 characters of the IMF-fixdate for t and a NUL. */
static void format_date(char out[32], int64_t t)
{
    t = t < YEAR_0000 ? YEAR_0000 : t > YEAR_9999 ? YEAR_9999 : t;
    int64_t days = (t >= 0 ? t : t - 86399) / 86400;
    unsigned secs = (unsigned)(t - days * 86400);
    int64_t year;
    int month, day;
    civil_from_days(days, &year, &month, &day);
    char *p = out;
    memcpy(p, wday_names[((days % 7) + 11) % 7], 3);   /* 1970-01-01 was a Thursday */
    memcpy(p + 3, ", ", 2);
    p += 5;
    p = put_digits(p, (unsigned)day, 2);
    *p++ = ' ';
    memcpy(p, month_names[month - 1], 3);
    p[3] = ' ';
    p = put_digits(p + 4, (unsigned)year, 4);
    *p++ = ' ';
    p = put_digits(p, secs / 3600, 2);
    *p++ = ':';
    p = put_digits(p, secs / 60 % 60, 2);
    *p++ = ':';
    p = put_digits(p, secs % 60, 2);
    memcpy(p, " GMT", 5);
}

const char *response_date(struct response_date *d, time_t now)
{
    if (d->text[0] == '\0' || d->sec != (int64_t)now) {
        format_date(d->text, (int64_t)now);
        d->sec = (int64_t)now;
    }
    return d->text;
}

size_t response_head(char *out, size_t cap, int status, const char *headers, size_t content_length, int keep_alive,
                     const char *date)
{
    int n;
    if (!headers)
        headers = "";
    if (status == 101)
        n = snprintf(out, cap, "HTTP/1.1 101 Switching Protocols\r\n%s\r\n", headers);
    else
        n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\nServer: wshub\r\nDate: %s\r\n%sContent-Length: %zu\r\n"
                     "Connection: %s\r\n\r\n",
                     status, http_status_text(status), date, headers, content_length,
                     keep_alive ? "keep-alive" : "close");
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}
