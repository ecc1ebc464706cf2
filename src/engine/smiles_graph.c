/*
 * smiles_graph.c — SMILES text to a molecular graph (atoms, bonds, rings).
 *
 * One left-to-right pass builds atoms and bonds and checks the grammar; a
 * second pass builds the neighbour lists, finds the ring bonds (a bond is in
 * a ring when it is not a bridge) and fills in implicit hydrogens.  Errors
 * are reported in string order: the pass stops at the first malformed
 * token, and the checks that can only be made at the end of the text
 * (unclosed rings and branches, a trailing bond or dot) report the leftmost
 * of their positions.  No static mutable state; thread-safe and reentrant.
 * The grammar and the hydrogen rule are in docs/ecfp.md.
 */
#include "smiles_graph.h"
#include "featurize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- elements --------------------------------------------------------- */

#define MAX_ELEMENT 118

/* Symbols by atomic number; index 0 is the wildcard. */
static const char *const element_symbols[MAX_ELEMENT + 1] = {
	"*",
	"H", "He",
	"Li", "Be", "B", "C", "N", "O", "F", "Ne",
	"Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar",
	"K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn",
	"Ga", "Ge", "As", "Se", "Br", "Kr",
	"Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd",
	"In", "Sn", "Sb", "Te", "I", "Xe",
	"Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy",
	"Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt",
	"Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn",
	"Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf",
	"Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds",
	"Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og",
};

const char *
moe_element_symbol(int atomic_number)
{
	if (atomic_number < 0 || atomic_number > MAX_ELEMENT)
		return "?";
	return element_symbols[atomic_number];
}

/* Atomic number of the symbol s[0..n) (n 1 or 2, case as written), or -1. */
static int
element_lookup(const unsigned char *s, size_t n)
{
	for (int z = 1; z <= MAX_ELEMENT; z++)
	{
		const char *sym = element_symbols[z];

		if (strlen(sym) == n && memcmp(sym, s, n) == 0)
			return z;
	}
	return -1;
}

/*
 * Default valences of the organic subset, lowest first, ending in 0.
 * Everything else gets no implicit hydrogen.
 */
static const uint8_t *
default_valences(int z)
{
	static const uint8_t b[] = {3, 0};
	static const uint8_t c[] = {4, 0};
	static const uint8_t n[] = {3, 5, 0};
	static const uint8_t o[] = {2, 0};
	static const uint8_t p[] = {3, 5, 0};
	static const uint8_t s[] = {2, 4, 6, 0};
	static const uint8_t halogen[] = {1, 0};

	switch (z)
	{
		case 5: return b;
		case 6: return c;
		case 7: return n;
		case 8: return o;
		case 15: return p;
		case 16: return s;
		case 9:
		case 17:
		case 35:
		case 53:
			return halogen;
		default:
			return NULL;
	}
}

static inline int
is_upper(unsigned char c)
{
	return c >= 'A' && c <= 'Z';
}

static inline int
is_lower(unsigned char c)
{
	return c >= 'a' && c <= 'z';
}

/* ---- parser state ----------------------------------------------------- */

/* What the previous token was; decides what may follow. */
typedef enum last_kind
{
	LAST_NONE,					/* start of the text */
	LAST_ATOM,
	LAST_BOND,
	LAST_OPEN,					/* "(" */
	LAST_CLOSE,					/* ")" */
	LAST_RING,					/* a ring-closure digit or %NN */
	LAST_DOT
} last_kind;

typedef struct ring_slot
{
	int32_t		atom;			/* -1 when the ring number is not open */
	int32_t		pos;			/* 1-based position of the opening digit or % */
	int32_t		bond_pos;		/* position of its bond symbol, 0 if none */
	unsigned char bond_char;	/* the bond symbol written at the opening, or 0 */
	char		label[4];		/* as written at the opening: "1" or "%12" */
} ring_slot;

typedef struct branch_slot
{
	int32_t		atom;			/* the atom the branch hangs from */
	int32_t		pos;			/* 1-based position of "(" */
} branch_slot;

typedef struct parser
{
	const unsigned char *s;
	size_t		len;
	moe_mol    *mol;
	size_t		atom_cap;
	size_t		bond_cap;
	uint8_t    *implicit_bond;	/* bond order was not written */
	branch_slot *branches;
	size_t		depth;
	ring_slot	rings[100];
	int32_t		prev;			/* atom the next bond starts from, -1 none */
	int32_t		prev_first_bond;	/* first bond made since prev was created */
	unsigned char bond_char;	/* pending bond symbol, 0 none */
	int32_t		bond_pos;
	last_kind	last;
	last_kind	before_bond;	/* what preceded the pending bond */
	int32_t		last_pos;		/* position of the last token (for a trailing dot) */
	moe_error  *err;
} parser;

static int
bond_order_of(unsigned char c)
{
	switch (c)
	{
		case '-':
		case '/':
		case '\\':
			return MOE_BOND_SINGLE;
		case '=':
			return MOE_BOND_DOUBLE;
		case '#':
			return MOE_BOND_TRIPLE;
		case '$':
			return MOE_BOND_QUADRUPLE;
		case ':':
			return MOE_BOND_AROMATIC;
		default:
			return 0;
	}
}

static moe_status
bond_without_atom(parser *p)
{
	return moe_fail_at(p->err, MOE_ERR_DATA, p->bond_pos,
					   "bond \"%c\" at position %d of SMILES string is not followed by an atom",
					   (char) p->bond_char, p->bond_pos);
}

static void
add_bond(parser *p, int32_t a, int32_t b, int order, int implicit, int32_t pos)
{
	moe_mol    *m = p->mol;
	moe_mol_bond *bd = &m->bonds[m->nbonds];

	bd->a = a < b ? a : b;
	bd->b = a < b ? b : a;
	bd->pos = pos;
	bd->order = (uint8_t) order;
	bd->in_ring = 0;
	p->implicit_bond[m->nbonds] = (uint8_t) implicit;
	m->nbonds++;
}

/* The order of a bond between a and b when none is written. */
static int
implicit_order(const parser *p, int32_t a, int32_t b)
{
	return (p->mol->atoms[a].aromatic && p->mol->atoms[b].aromatic)
		? MOE_BOND_AROMATIC : MOE_BOND_SINGLE;
}

/*
 * Append an atom (already filled in at *atom) and bond it to prev.
 */
static moe_status
push_atom(parser *p, const moe_mol_atom *atom)
{
	moe_mol    *m = p->mol;
	int32_t		idx = m->natoms;

	if ((size_t) m->natoms >= MOE_SMILES_GRAPH_MAX_ATOMS)
		return moe_fail_at(p->err, MOE_ERR_DATA, atom->pos,
						   "SMILES string has more than %d atoms (atom %d at position %d)",
						   MOE_SMILES_GRAPH_MAX_ATOMS, MOE_SMILES_GRAPH_MAX_ATOMS + 1, atom->pos);
	m->atoms[idx] = *atom;
	m->natoms++;
	p->prev_first_bond = m->nbonds;
	if (p->prev >= 0)
	{
		if (p->bond_char)
			add_bond(p, p->prev, idx, bond_order_of(p->bond_char), 0, p->bond_pos);
		else
			add_bond(p, p->prev, idx, implicit_order(p, p->prev, idx), 1, atom->pos);
	}
	p->prev = idx;
	p->bond_char = 0;
	p->last = LAST_ATOM;
	p->last_pos = atom->pos;
	return MOE_OK;
}

/*
 * Parse the bracket atom that starts at s[i] == '['; *next gets the index
 * after its ']'.
 */
static moe_status
parse_bracket(parser *p, size_t i, size_t *next, moe_mol_atom *atom)
{
	const unsigned char *s = p->s;
	size_t		close = i + 1;
	size_t		j;

	/* Find the ']' first, with the tokenizer's checks and messages. */
	for (;;)
	{
		if (close >= p->len)
			return moe_fail_at(p->err, MOE_ERR_DATA, (int) i + 1,
							   "unclosed bracket atom: \"[\" at position %d of SMILES string has no matching \"]\"",
							   (int) i + 1);
		if (s[close] == ']')
			break;
		if (s[close] == '[')
			return moe_fail_at(p->err, MOE_ERR_DATA, (int) close + 1,
							   "nested \"[\" at position %d of SMILES string (bracket atom opened at position %d)",
							   (int) close + 1, (int) i + 1);
		if (!(is_upper(s[close]) || is_lower(s[close]) || moe_is_digit(s[close]) ||
			  s[close] == '+' || s[close] == '-' || s[close] == '@' || s[close] == ':' ||
			  s[close] == '*'))
			return moe_invalid_char(p->err, s[close], close, "SMILES string");
		close++;
	}
	if (close == i + 1)
		return moe_fail_at(p->err, MOE_ERR_DATA, (int) i + 1,
						   "empty bracket atom \"[]\" at position %d of SMILES string",
						   (int) i + 1);

	memset(atom, 0, sizeof(*atom));
	atom->pos = (int32_t) i + 1;
	atom->bracket = 1;
	j = i + 1;

	/* isotope: ignored */
	while (j < close && moe_is_digit(s[j]))
		j++;

	/* element symbol */
	if (j < close && s[j] == '*')
	{
		atom->element = 0;
		j++;
	}
	else if (j < close && is_lower(s[j]))
	{
		/* aromatic: se, as, te, then b c n o p s */
		static const char *const two[] = {"se", "as", "te"};
		static const char one[] = "bcnops";
		int			z = -1;

		if (j + 1 < close && is_lower(s[j + 1]))
			for (int k = 0; k < 3 && z < 0; k++)
				if (s[j] == (unsigned char) two[k][0] && s[j + 1] == (unsigned char) two[k][1])
				{
					unsigned char up[2] = {(unsigned char) (s[j] - 'a' + 'A'), s[j + 1]};

					z = element_lookup(up, 2);
					j += 2;
				}
		if (z < 0 && strchr(one, s[j]) != NULL)
		{
			unsigned char up = (unsigned char) (s[j] - 'a' + 'A');

			z = element_lookup(&up, 1);
			j++;
		}
		if (z < 0)
		{
			size_t		n = (j + 1 < close && is_lower(s[j + 1])) ? 2 : 1;

			return moe_fail_at(p->err, MOE_ERR_DATA, (int) j + 1,
							   "unknown aromatic element \"%.*s\" at position %d of SMILES string",
							   (int) n, (const char *) s + j, (int) j + 1);
		}
		atom->element = (uint8_t) z;
		atom->aromatic = 1;
	}
	else if (j < close && is_upper(s[j]))
	{
		int			z = -1;

		/* greedy: a two-letter symbol wins over a one-letter one */
		if (j + 1 < close && is_lower(s[j + 1]))
		{
			z = element_lookup(s + j, 2);
			if (z >= 0)
				j += 2;
		}
		if (z < 0)
		{
			z = element_lookup(s + j, 1);
			if (z >= 0)
				j++;
		}
		if (z < 0)
		{
			size_t		n = (j + 1 < close && is_lower(s[j + 1])) ? 2 : 1;

			return moe_fail_at(p->err, MOE_ERR_DATA, (int) j + 1,
							   "unknown element \"%.*s\" at position %d of SMILES string",
							   (int) n, (const char *) s + j, (int) j + 1);
		}
		atom->element = (uint8_t) z;
	}
	else
		return moe_fail_at(p->err, MOE_ERR_DATA, (int) j + 1,
						   "missing element symbol at position %d of SMILES string (bracket atom opened at position %d)",
						   (int) j + 1, (int) i + 1);

	/* chirality: @, @@, @TH1, @AL2, @SP3, @TB12, @OH25; ignored */
	if (j < close && s[j] == '@')
	{
		j++;
		if (j < close && s[j] == '@')
			j++;
		else if (j + 1 < close && is_upper(s[j]) && is_upper(s[j + 1]))
		{
			static const char *const classes[] = {"TH", "AL", "SP", "TB", "OH"};
			int			known = 0;

			for (int k = 0; k < 5; k++)
				known |= s[j] == (unsigned char) classes[k][0] &&
					s[j + 1] == (unsigned char) classes[k][1];
			if (known)
			{
				j += 2;
				while (j < close && moe_is_digit(s[j]))
					j++;
			}
		}
	}

	/* hydrogen count: H or H<digit> */
	if (j < close && s[j] == 'H')
	{
		j++;
		atom->hcount = 1;
		if (j < close && moe_is_digit(s[j]))
			atom->hcount = (uint8_t) (s[j++] - '0');
	}

	/* charge: +, ++, +2 (up to 15), likewise - */
	if (j < close && (s[j] == '+' || s[j] == '-'))
	{
		unsigned char sign = s[j];
		size_t		at = j;
		int			q = 1;

		j++;
		if (j < close && moe_is_digit(s[j]))
		{
			q = s[j++] - '0';
			if (j < close && moe_is_digit(s[j]))
				q = q * 10 + (s[j++] - '0');
		}
		else
			while (j < close && s[j] == sign)
			{
				q++;
				j++;
			}
		if (q > 15)
			return moe_fail_at(p->err, MOE_ERR_DATA, (int) at + 1,
							   "charge %c%d at position %d of SMILES string is out of range (at most 15)",
							   (char) sign, q, (int) at + 1);
		atom->charge = (int8_t) (sign == '+' ? q : -q);
	}

	/* atom class: ":" digits; ignored */
	if (j < close && s[j] == ':')
	{
		j++;
		if (!(j < close && moe_is_digit(s[j])))
			return moe_fail_at(p->err, MOE_ERR_DATA, (int) j,
							   "atom class \":\" at position %d of SMILES string must be followed by digits",
							   (int) j);
		while (j < close && moe_is_digit(s[j]))
			j++;
	}

	if (j < close)
		return moe_invalid_char(p->err, s[j], j, "SMILES string");
	*next = close + 1;
	return MOE_OK;
}

/* A ring-closure token (digit or %NN) numbered ring at 1-based position pos. */
static moe_status
ring_closure(parser *p, int ring, int32_t pos, const char *label)
{
	ring_slot  *slot = &p->rings[ring];
	moe_mol    *m = p->mol;

	if (!(p->last == LAST_ATOM || p->last == LAST_RING ||
		  (p->last == LAST_BOND && (p->before_bond == LAST_ATOM || p->before_bond == LAST_RING))))
	{
		if (p->last == LAST_BOND)
			return bond_without_atom(p);
		return moe_fail_at(p->err, MOE_ERR_DATA, pos,
						   "ring closure \"%s\" at position %d of SMILES string does not follow an atom",
						   label, pos);
	}

	if (slot->atom < 0)
	{
		/* opening */
		slot->atom = p->prev;
		slot->pos = pos;
		slot->bond_char = p->bond_char;
		slot->bond_pos = p->bond_char ? p->bond_pos : 0;
		snprintf(slot->label, sizeof(slot->label), "%s", label);
	}
	else
	{
		int32_t		other = slot->atom;
		int32_t		cur = p->prev;
		int			o1 = slot->bond_char ? bond_order_of(slot->bond_char) : 0;
		int			o2 = p->bond_char ? bond_order_of(p->bond_char) : 0;

		if (other == cur)
			return moe_fail_at(p->err, MOE_ERR_DATA, pos,
							   "ring closure \"%s\" at position %d of SMILES string bonds an atom to itself (opened at position %d)",
							   label, pos, slot->pos);
		if (o1 && o2 && o1 != o2)
			return moe_fail_at(p->err, MOE_ERR_DATA, pos,
							   "ring closure \"%s\" at position %d of SMILES string has conflicting bond symbols \"%c\" (position %d) and \"%c\" (position %d)",
							   label, pos, (char) slot->bond_char, slot->bond_pos,
							   (char) p->bond_char, p->bond_pos);
		/*
		 * Every bond made since cur was created involves cur (ring digits
		 * directly follow their atom), so a duplicate is among those.
		 */
		for (int32_t k = p->prev_first_bond; k < m->nbonds; k++)
		{
			const moe_mol_bond *bd = &m->bonds[k];

			if ((bd->a == other && bd->b == cur) || (bd->a == cur && bd->b == other))
				return moe_fail_at(p->err, MOE_ERR_DATA, pos,
								   "ring closure \"%s\" at position %d of SMILES string repeats the bond between the atoms at positions %d and %d",
								   label, pos, m->atoms[other].pos, m->atoms[cur].pos);
		}
		if (o1 || o2)
			add_bond(p, other, cur, o1 ? o1 : o2, 0, pos);
		else
			add_bond(p, other, cur, implicit_order(p, other, cur), 1, pos);
		slot->atom = -1;
	}
	p->bond_char = 0;
	p->last = LAST_RING;
	p->last_pos = pos;
	return MOE_OK;
}

/* A bond symbol c at 1-based position pos: it must follow an atom. */
static moe_status
read_bond(parser *p, unsigned char c, int32_t pos)
{
	if (p->last == LAST_BOND)
		return bond_without_atom(p);
	if (p->last == LAST_NONE || p->last == LAST_DOT)
		return moe_fail_at(p->err, MOE_ERR_DATA, pos,
						   "bond \"%c\" at position %d of SMILES string does not follow an atom",
						   (char) c, pos);
	p->before_bond = p->last;
	p->bond_char = c;
	p->bond_pos = pos;
	p->last = LAST_BOND;
	p->last_pos = pos;
	return MOE_OK;
}

/* The left-to-right pass. */
static moe_status
parse_text(parser *p)
{
	const unsigned char *s = p->s;
	size_t		i = 0;
	moe_status	st;

	while (i < p->len)
	{
		unsigned char c = s[i];
		int32_t		pos = (int32_t) i + 1;
		moe_mol_atom atom;
		size_t		organic = moe_smiles_organic_atom(s, p->len, i);

		if (moe_smiles_is_bond(c))
		{
			st = read_bond(p, c, pos);
			if (st != MOE_OK)
				return st;
			i++;
			continue;
		}
		if (organic > 0)
		{
			unsigned char sym[2] = {c, organic == 2 ? s[i + 1] : 0};

			memset(&atom, 0, sizeof(atom));
			atom.pos = pos;
			if (c == '*')
				atom.element = 0;
			else if (is_lower(c))
			{
				sym[0] = (unsigned char) (c - 'a' + 'A');
				atom.element = (uint8_t) element_lookup(sym, 1);
				atom.aromatic = 1;
			}
			else
				atom.element = (uint8_t) element_lookup(sym, organic);
			st = push_atom(p, &atom);
			if (st != MOE_OK)
				return st;
			i += organic;
			continue;
		}
		switch (c)
		{
			case '[':
				{
					size_t		next = 0;

					st = parse_bracket(p, i, &next, &atom);
					if (st != MOE_OK)
						return st;
					st = push_atom(p, &atom);
					if (st != MOE_OK)
						return st;
					i = next;
					continue;
				}
			case ']':
				return moe_fail_at(p->err, MOE_ERR_DATA, pos,
								   "unmatched \"]\" at position %d of SMILES string", pos);
			case '(':
				if (p->last == LAST_BOND)
					return bond_without_atom(p);
				if (!(p->last == LAST_ATOM || p->last == LAST_RING || p->last == LAST_CLOSE) ||
					p->prev < 0)
					return moe_fail_at(p->err, MOE_ERR_DATA, pos,
									   "branch \"(\" at position %d of SMILES string does not follow an atom",
									   pos);
				p->branches[p->depth].atom = p->prev;
				p->branches[p->depth].pos = pos;
				p->depth++;
				p->last = LAST_OPEN;
				p->last_pos = pos;
				break;
			case ')':
				if (p->depth == 0)
					return moe_fail_at(p->err, MOE_ERR_DATA, pos,
									   "unmatched \")\" at position %d of SMILES string", pos);
				if (p->last == LAST_BOND)
					return bond_without_atom(p);
				if (p->last == LAST_OPEN)
					return moe_fail_at(p->err, MOE_ERR_DATA, p->branches[p->depth - 1].pos,
									   "empty branch \"()\" at position %d of SMILES string",
									   p->branches[p->depth - 1].pos);
				if (p->last == LAST_DOT)
					return moe_fail_at(p->err, MOE_ERR_DATA, p->last_pos,
									   "dot \".\" at position %d of SMILES string is not followed by an atom",
									   p->last_pos);
				p->depth--;
				p->prev = p->branches[p->depth].atom;
				p->prev_first_bond = p->mol->nbonds;	/* no ring digit may follow */
				p->last = LAST_CLOSE;
				p->last_pos = pos;
				break;
			case '.':
				if (p->last == LAST_BOND)
					return bond_without_atom(p);
				if (!(p->last == LAST_ATOM || p->last == LAST_RING || p->last == LAST_CLOSE))
					return moe_fail_at(p->err, MOE_ERR_DATA, pos,
									   "dot \".\" at position %d of SMILES string does not follow an atom",
									   pos);
				p->prev = -1;
				p->last = LAST_DOT;
				p->last_pos = pos;
				break;
			case '%':
				{
					char		label[4];

					if (!(i + 2 < p->len && moe_is_digit(s[i + 1]) && moe_is_digit(s[i + 2])))
						return moe_fail_at(p->err, MOE_ERR_DATA, pos,
										   "ring closure \"%%\" at position %d of SMILES string must be followed by two digits",
										   pos);
					label[0] = '%';
					label[1] = (char) s[i + 1];
					label[2] = (char) s[i + 2];
					label[3] = '\0';
					st = ring_closure(p, (s[i + 1] - '0') * 10 + (s[i + 2] - '0'), pos, label);
					if (st != MOE_OK)
						return st;
					i += 3;
					continue;
				}
			default:
				if (moe_is_digit(c))
				{
					char		label[2] = {(char) c, '\0'};

					st = ring_closure(p, c - '0', pos, label);
					if (st != MOE_OK)
						return st;
					break;
				}
				return moe_invalid_char(p->err, c, i, "SMILES string");
		}
		i++;
	}

	/* End of text: report the leftmost of what is left open. */
	{
		int32_t		best = 0;
		int			what = 0;	/* 1 ring, 2 branch, 3 bond, 4 dot */
		int			ring = -1;

		for (int r = 0; r < 100; r++)
			if (p->rings[r].atom >= 0 && (best == 0 || p->rings[r].pos < best))
			{
				best = p->rings[r].pos;
				what = 1;
				ring = r;
			}
		if (p->depth > 0 && (best == 0 || p->branches[0].pos < best))
		{
			best = p->branches[0].pos;
			what = 2;
		}
		if (p->last == LAST_BOND && (best == 0 || p->bond_pos < best))
		{
			best = p->bond_pos;
			what = 3;
		}
		if (p->last == LAST_DOT && (best == 0 || p->last_pos < best))
		{
			best = p->last_pos;
			what = 4;
		}
		switch (what)
		{
			case 1:
				return moe_fail_at(p->err, MOE_ERR_DATA, best,
								   "unclosed ring \"%s\" at position %d of SMILES string",
								   p->rings[ring].label, best);
			case 2:
				return moe_fail_at(p->err, MOE_ERR_DATA, best,
								   "unclosed \"(\" at position %d of SMILES string", best);
			case 3:
				return bond_without_atom(p);
			case 4:
				return moe_fail_at(p->err, MOE_ERR_DATA, best,
								   "dot \".\" at position %d of SMILES string is not followed by an atom",
								   best);
			default:
				break;
		}
	}
	return MOE_OK;
}

/* ---- second pass: neighbours, rings, hydrogens ------------------------ */

static moe_status
build_neighbours(moe_mol *m, moe_error *err)
{
	int32_t    *fill;

	m->nbr_start = calloc((size_t) m->natoms + 1, sizeof(int32_t));
	m->nbr_atom = malloc(sizeof(int32_t) * (size_t) (2 * m->nbonds + 1));
	m->nbr_bond = malloc(sizeof(int32_t) * (size_t) (2 * m->nbonds + 1));
	fill = malloc(sizeof(int32_t) * (size_t) (m->natoms + 1));
	if (m->nbr_start == NULL || m->nbr_atom == NULL || m->nbr_bond == NULL || fill == NULL)
	{
		free(fill);
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory building a molecular graph of %d atoms",
						m->natoms);
	}
	for (int k = 0; k < m->nbonds; k++)
	{
		m->nbr_start[m->bonds[k].a + 1]++;
		m->nbr_start[m->bonds[k].b + 1]++;
	}
	for (int i = 0; i < m->natoms; i++)
		m->nbr_start[i + 1] += m->nbr_start[i];
	for (int i = 0; i < m->natoms; i++)
	{
		fill[i] = m->nbr_start[i];
		m->atoms[i].degree = (uint16_t) (m->nbr_start[i + 1] - m->nbr_start[i]);
	}
	for (int k = 0; k < m->nbonds; k++)
	{
		int32_t		a = m->bonds[k].a,
					b = m->bonds[k].b;

		m->nbr_atom[fill[a]] = b;
		m->nbr_bond[fill[a]++] = k;
		m->nbr_atom[fill[b]] = a;
		m->nbr_bond[fill[b]++] = k;
	}
	free(fill);
	return MOE_OK;
}

/*
 * Mark ring bonds and atoms: a bond is in a ring when it is not a bridge
 * (Tarjan's low-link, iterative so that a 10000-atom chain does not blow
 * the stack).
 */
static moe_status
find_rings(moe_mol *m, moe_error *err)
{
	int			n = m->natoms;
	int32_t    *disc = malloc(sizeof(int32_t) * (size_t) n);
	int32_t    *low = malloc(sizeof(int32_t) * (size_t) n);
	int32_t    *via = malloc(sizeof(int32_t) * (size_t) n);	/* bond to the DFS parent */
	int32_t    *iter = malloc(sizeof(int32_t) * (size_t) n);
	int32_t    *stack = malloc(sizeof(int32_t) * (size_t) n);
	int32_t		time = 0;

	if (disc == NULL || low == NULL || via == NULL || iter == NULL || stack == NULL)
	{
		free(disc);
		free(low);
		free(via);
		free(iter);
		free(stack);
		return moe_fail(err, MOE_ERR_NOMEM, "out of memory finding the rings of %d atoms", n);
	}
	for (int i = 0; i < n; i++)
		disc[i] = -1;
	for (int k = 0; k < m->nbonds; k++)
		m->bonds[k].in_ring = 1;

	for (int root = 0; root < n; root++)
	{
		int			top = 0;

		if (disc[root] >= 0)
			continue;
		disc[root] = low[root] = time++;
		via[root] = -1;
		iter[root] = m->nbr_start[root];
		stack[top++] = root;
		while (top > 0)
		{
			int32_t		v = stack[top - 1];

			if (iter[v] < m->nbr_start[v + 1])
			{
				int32_t		w = m->nbr_atom[iter[v]];
				int32_t		bond = m->nbr_bond[iter[v]];

				iter[v]++;
				if (bond == via[v])
					continue;
				if (disc[w] < 0)
				{
					disc[w] = low[w] = time++;
					via[w] = bond;
					iter[w] = m->nbr_start[w];
					stack[top++] = w;
				}
				else if (disc[w] < low[v])
					low[v] = disc[w];
			}
			else
			{
				top--;
				if (top > 0)
				{
					int32_t		u = stack[top - 1];

					if (low[v] < low[u])
						low[u] = low[v];
					if (low[v] > disc[u])
						m->bonds[via[v]].in_ring = 0;	/* a bridge */
				}
			}
		}
	}
	for (int k = 0; k < m->nbonds; k++)
		if (m->bonds[k].in_ring)
		{
			m->atoms[m->bonds[k].a].in_ring = 1;
			m->atoms[m->bonds[k].b].in_ring = 1;
		}
	free(disc);
	free(low);
	free(via);
	free(iter);
	free(stack);
	return MOE_OK;
}

/*
 * Implicit hydrogens of an organic-subset atom (docs/ecfp.md):
 *  - s = sum of the orders of its bonds, an aromatic bond counting 1;
 *  - v = the lowest default valence >= s (none: no hydrogen);
 *  - a non-aromatic atom with no aromatic bond gets v - s;
 *  - an aromatic atom (or one with an aromatic bond) owes one unit of
 *    valence to the double bond it takes in a Kekulé form, unless it is
 *    already saturated (v == s: pyrrole-type n with three bonds, furan o,
 *    thiophene s), so it gets v - s - 1, or 0 when v == s.
 */
static int
implicit_hydrogens(const moe_mol *m, int i)
{
	const moe_mol_atom *a = &m->atoms[i];
	const uint8_t *val = default_valences(a->element);
	int			sum = 0;
	int			aromatic = a->aromatic;

	if (val == NULL)
		return 0;
	for (int32_t k = m->nbr_start[i]; k < m->nbr_start[i + 1]; k++)
	{
		int			o = m->bonds[m->nbr_bond[k]].order;

		if (o == MOE_BOND_AROMATIC)
		{
			aromatic = 1;
			sum += 1;
		}
		else
			sum += o;
	}
	for (; *val; val++)
		if (*val >= sum)
		{
			if (!aromatic)
				return *val - sum;
			return *val > sum ? *val - sum - 1 : 0;
		}
	return 0;
}

void
moe_mol_free(moe_mol *mol)
{
	if (mol == NULL)
		return;
	free(mol->atoms);
	free(mol->bonds);
	free(mol->nbr_start);
	free(mol->nbr_atom);
	free(mol->nbr_bond);
	memset(mol, 0, sizeof(*mol));
}

moe_status
moe_smiles_parse(const char *smiles, size_t len, moe_mol *mol, moe_error *err)
{
	parser		p;
	moe_status	st;

	if (mol == NULL)
		return moe_fail(err, MOE_ERR_INVALID, "SMILES graph output is NULL");
	memset(mol, 0, sizeof(*mol));
	if (smiles == NULL || len == 0)
		return moe_fail(err, MOE_ERR_DATA, "SMILES string is empty");
	if (len > MOE_SMILES_GRAPH_MAX_LEN)
		return moe_fail(err, MOE_ERR_DATA,
						"SMILES string is too long (%zu bytes, at most %d)",
						len, MOE_SMILES_GRAPH_MAX_LEN);

	memset(&p, 0, sizeof(p));
	p.s = (const unsigned char *) smiles;
	p.len = len;
	p.mol = mol;
	p.err = err;
	p.prev = -1;
	p.last = LAST_NONE;
	for (int r = 0; r < 100; r++)
		p.rings[r].atom = -1;
	/*
	 * Every atom takes at least one byte, and so does every bond: a chain
	 * bond per atom after the first, a ring bond per two closure tokens.
	 */
	p.atom_cap = len < MOE_SMILES_GRAPH_MAX_ATOMS ? len : MOE_SMILES_GRAPH_MAX_ATOMS;
	p.bond_cap = len;
	mol->atoms = malloc(sizeof(moe_mol_atom) * p.atom_cap);
	mol->bonds = malloc(sizeof(moe_mol_bond) * p.bond_cap);
	p.implicit_bond = malloc(p.bond_cap);
	p.branches = malloc(sizeof(branch_slot) * len);
	if (mol->atoms == NULL || mol->bonds == NULL || p.implicit_bond == NULL || p.branches == NULL)
	{
		st = moe_fail(err, MOE_ERR_NOMEM,
					  "out of memory parsing a SMILES string of %zu bytes", len);
		goto done;
	}

	st = parse_text(&p);
	if (st != MOE_OK)
		goto done;
	st = build_neighbours(mol, err);
	if (st != MOE_OK)
		goto done;
	st = find_rings(mol, err);
	if (st != MOE_OK)
		goto done;

	/* An unwritten aromatic bond outside any ring (biphenyl's) is single. */
	for (int k = 0; k < mol->nbonds; k++)
		if (p.implicit_bond[k] && !mol->bonds[k].in_ring &&
			mol->bonds[k].order == MOE_BOND_AROMATIC)
			mol->bonds[k].order = MOE_BOND_SINGLE;

	for (int i = 0; i < mol->natoms; i++)
		if (!mol->atoms[i].bracket)
			mol->atoms[i].hcount = (uint8_t) implicit_hydrogens(mol, i);

done:
	free(p.implicit_bond);
	free(p.branches);
	if (st != MOE_OK)
		moe_mol_free(mol);
	return st;
}
