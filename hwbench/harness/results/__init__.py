"""Result files and what is made of them: compare, report, summary, roofline."""
