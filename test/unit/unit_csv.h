/*
 * unit_csv.h — the second column of the benchmark CSVs, for the tests that
 * run over every drug and protein of ../shared/data when it is there.
 */
#ifndef MOE_UNIT_CSV_H
#define MOE_UNIT_CSV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/*
 * Read column 2 of a two-column CSV with a header row.  Returns the number of
 * rows, or -1 when the file does not exist.  rows[i] are malloc'd.
 */
static inline int
unit_read_column2(const char *path, char ***rows_out)
{
	FILE	   *f = fopen(path, "r");
	char	  **rows = NULL;
	int			n = 0,
				cap = 0;
	char	   *line = NULL;
	size_t		lcap = 0;
	ssize_t		got;
	int			first = 1;

	if (f == NULL)
		return -1;
	while ((got = getline(&line, &lcap, f)) >= 0)
	{
		while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
			line[--got] = '\0';
		if (first)
		{
			first = 0;
			continue;
		}
		if (got == 0)
			continue;
		char	   *comma = strchr(line, ',');

		if (comma == NULL)
			continue;
		if (n == cap)
		{
			cap = cap ? cap * 2 : 64;
			rows = realloc(rows, sizeof(char *) * cap);
		}
		rows[n++] = strdup(comma + 1);
	}
	free(line);
	fclose(f);
	*rows_out = rows;
	return n;
}

static inline void
unit_free_rows(char **rows, int n)
{
	for (int i = 0; i < n; i++)
		free(rows[i]);
	free(rows);
}

#endif
